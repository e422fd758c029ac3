"""SeBS: benchmark directories, its configuration file, its result formats.

- ``_benchmark`` — :func:`load_benchmark` reads a benchmark directory
  (``config.json``, ``input.py``, ``python/`` or ``nodejs/``), :func:`build_package` builds
  its package, :func:`generate_inputs` runs ``generate_input`` against the
  deployment's storage, :func:`validate` asks ``validate_output``.
- ``_nosql`` — ``allocate_nosql()`` read and checked, the deployment's
  tables (:func:`deployment_tables`), boto3 added for the ``nosql`` module
  (:func:`add_module_requirements`).
- ``_lookup`` — BENCHMARK on the command line: a directory, or a name found
  as SeBS finds it (``benchmarks/<group>/<name>``), close matches in the error.
- ``_config`` — SeBS's ``--config`` file (and ``--storage-configuration``)
  read into frozen Structs with the command line's overrides; which
  experiments and platforms run locally.
- ``_results`` — ``ExecutionResult`` / ``ExperimentResult`` in SeBS's exact
  JSON shape (``experiments.json``), and :func:`from_invocation`, which
  turns a faaslab :class:`Invocation` into one.
- ``_perf_cost`` — perf-cost's batch accounting (:class:`PerfCostTally`), its
  ``perf-cost/<type>_results_<memory>.json`` files and ``result.csv``.

Everything here is pure or file I/O: running benchmarks against a
deployment is the CLI's (``_cli._sebs_runs``).
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
from ._config import (
    DEFAULT_VERSIONS,
    EXPERIMENTS,
    INPUT_SIZES,
    UNSUPPORTED_EXPERIMENTS,
    ExperimentsConfig,
    LocalStorage,
    MinioStorage,
    PerfCostSettings,
    Runtime,
    ScyllaDBStorage,
    SebsConfig,
    check_deployment,
    check_experiment,
    load_config,
    load_storage,
    parse_config,
    result_config,
)
from ._lookup import benchmark_data_dir, benchmark_roots, find_benchmark, list_benchmarks
from ._nosql import NOSQL_REQUIREMENT, add_module_requirements, deployment_tables
from ._perf_cost import (
    CSV_HEADER,
    PERF_COST_DIR,
    RESULT_CSV,
    PerfCostResult,
    PerfCostStatistics,
    PerfCostTally,
    RunType,
    process_perf_cost,
    read_perf_cost_result,
    result_file_name,
    write_perf_cost_result,
)
from ._results import (
    EXPERIMENTS_FILE,
    ExecutionBilling,
    ExecutionResult,
    ExecutionStats,
    ExecutionTimes,
    ExperimentResult,
    ProviderTimes,
    ResultConfig,
    encode_sebs_json,
    execution_result,
    experiment_result,
    failed_result,
    from_invocation,
    read_experiment_result,
    read_sebs_json,
    write_experiments_json,
    write_sebs_json,
)

__all__ = (
    "CSV_HEADER",
    "DEFAULT_VERSIONS",
    "EXPERIMENTS",
    "EXPERIMENTS_FILE",
    "INPUT_SIZES",
    "NOSQL_REQUIREMENT",
    "PERF_COST_DIR",
    "RESULT_CSV",
    "UNSUPPORTED_EXPERIMENTS",
    "BenchmarkNoSQL",
    "BenchmarkStorage",
    "ExecutionBilling",
    "ExecutionResult",
    "ExecutionStats",
    "ExecutionTimes",
    "ExperimentResult",
    "ExperimentsConfig",
    "LocalStorage",
    "MinioStorage",
    "PerfCostResult",
    "PerfCostSettings",
    "PerfCostStatistics",
    "PerfCostTally",
    "ProviderTimes",
    "ResultConfig",
    "RunType",
    "Runtime",
    "ScyllaDBStorage",
    "SebsBenchmark",
    "SebsConfig",
    "Verdict",
    "add_module_requirements",
    "benchmark_data_dir",
    "benchmark_roots",
    "build_package",
    "check_deployment",
    "check_experiment",
    "deployment_tables",
    "encode_sebs_json",
    "execution_result",
    "experiment_result",
    "failed_result",
    "find_benchmark",
    "from_invocation",
    "generate_inputs",
    "is_sebs_benchmark",
    "list_benchmarks",
    "load_benchmark",
    "load_config",
    "load_storage",
    "parse_config",
    "process_perf_cost",
    "read_experiment_result",
    "read_perf_cost_result",
    "read_sebs_json",
    "result_config",
    "result_file_name",
    "validate",
    "write_experiments_json",
    "write_perf_cost_result",
    "write_sebs_json",
)
