"""SeBS benchmark directories: packages built as SeBS builds them, inputs, validation.

- ``_benchmark`` — :func:`load_benchmark` reads a benchmark directory
  (``config.json``, ``input.py``, ``python/`` or ``nodejs/``), :func:`build_package` builds
  its package, :func:`generate_inputs` runs ``generate_input`` against the
  deployment's storage, :func:`validate` asks ``validate_output``.
"""

from ._benchmark import (
    BenchmarkStorage,
    SebsBenchmark,
    Verdict,
    build_package,
    generate_inputs,
    is_sebs_benchmark,
    load_benchmark,
    validate,
)

__all__ = (
    "BenchmarkStorage",
    "SebsBenchmark",
    "Verdict",
    "build_package",
    "generate_inputs",
    "is_sebs_benchmark",
    "load_benchmark",
    "validate",
)
