from faaslab._cli import main

raise SystemExit(main())
