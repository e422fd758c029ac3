"""The command line: ``python -m faaslab`` / ``faaslab``.

- ``_main`` — the parser, dispatch, logging set-up and exit codes;
- one module per command group, each with ``register(commands)``:
  ``_deployments`` (start, up, invoke, status, stop), ``_system`` (engine,
  images, doctor, ps, gc), ``_experiments`` (run, report), ``_demo`` (demo);
- ``_doctor`` — the checks behind ``doctor``; ``_images`` — every image
  faaslab needs, built or checked in one place.
"""

from ._main import main

__all__ = ("main",)
