"""Experiments: concurrent workloads on deployments to compare, with every call recorded.

- :mod:`._spec` — :class:`ExperimentSpec`, :class:`ExperimentDeployment`, :class:`Workload`
- :mod:`._arrivals` — the open loop's Poisson arrivals (pure, seeded)
- :mod:`._events` — events inline, from a file, or a SeBS input (hook)
- :mod:`._driver` — one workload on one deployment: loops, warm-up, cold instances
- :mod:`._records` — :class:`InvocationRecord`, ``invocations.jsonl``
- :mod:`._samples` — per-instance memory samples for the memory plot
- :mod:`._summary` / :mod:`._table` — summary math, and the table ``report`` prints
- :mod:`._results` / :mod:`._readback` — the results directory, written and read back
- :mod:`._runner` — :func:`run_experiment`
- :mod:`._plots` — latency CDFs and memory over time (matplotlib, imported only when plotting)
"""

from ._arrivals import poisson_arrivals
from ._driver import Progress, ProgressCallback
from ._plots import PLOT_HINT, write_plots
from ._readback import read_summary, summarize_results
from ._records import ErrorRecord, InvocationRecord, read_records
from ._results import RunInfo, WorkloadRunInfo, read_run_info
from ._runner import ExperimentResult, run_experiment
from ._spec import (
    ExperimentDeployment,
    ExperimentSpec,
    LoopKind,
    StartMode,
    Workload,
    load_experiment_spec,
)
from ._summary import (
    ExperimentSummary,
    FunctionSummary,
    LatencyStats,
    PhaseSummary,
    latency_stats,
    percentile,
    summarize,
)
from ._table import format_table, table_columns, table_notes, table_rows

__all__ = (
    "PLOT_HINT",
    "ErrorRecord",
    "ExperimentDeployment",
    "ExperimentResult",
    "ExperimentSpec",
    "ExperimentSummary",
    "FunctionSummary",
    "InvocationRecord",
    "LatencyStats",
    "LoopKind",
    "PhaseSummary",
    "Progress",
    "ProgressCallback",
    "RunInfo",
    "StartMode",
    "Workload",
    "WorkloadRunInfo",
    "format_table",
    "latency_stats",
    "load_experiment_spec",
    "percentile",
    "poisson_arrivals",
    "read_records",
    "read_run_info",
    "read_summary",
    "run_experiment",
    "summarize",
    "summarize_results",
    "table_columns",
    "table_notes",
    "table_rows",
    "write_plots",
)
