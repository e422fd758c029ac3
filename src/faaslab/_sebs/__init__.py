"""SeBS benchmark directories: packages built as SeBS builds them, inputs, validation.

- ``_benchmark`` — :func:`load_benchmark` reads a benchmark directory
  (``config.json``, ``input.py``, ``python/``), :func:`build_package` builds
  its package, :func:`generate_inputs` runs ``generate_input`` against the
  deployment's storage, :func:`validate` asks ``validate_output``;
- ``_nosql`` — ``allocate_nosql()`` read and checked, the deployment's
  tables (:func:`deployment_tables`), boto3 added for the ``nosql`` module
  (:func:`add_module_requirements`).
"""

from ._benchmark import (
    BenchmarkNoSQL,
    BenchmarkStorage,
    SebsBenchmark,
    Verdict,
    build_package,
    generate_inputs,
    is_sebs_benchmark,
    load_benchmark,
    validate,
)
from ._nosql import NOSQL_REQUIREMENT, add_module_requirements, deployment_tables

__all__ = (
    "NOSQL_REQUIREMENT",
    "BenchmarkNoSQL",
    "BenchmarkStorage",
    "SebsBenchmark",
    "Verdict",
    "add_module_requirements",
    "build_package",
    "deployment_tables",
    "generate_inputs",
    "is_sebs_benchmark",
    "load_benchmark",
    "validate",
)
