"""Reading a results directory back: the summary from what exists, and plot inputs.

``run`` writes summary.json through :func:`summarize_results` at its end, and
``report`` calls it again, so both always agree; it works on whatever a run
left, interrupted or crashed ones included.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec

from .._aggregate import MemoryReport, read_memory_report, report_path_for
from .._errors import SpecError
from ._pools import SCALING, PoolSeries, read_pools
from ._records import InvocationRecord, read_records
from ._results import INVOCATIONS, SAMPLES, SUMMARY, RunInfo, read_run_info
from ._samples import InstanceSamples, read_samples
from ._summary import ExperimentSummary, Status, summarize

__all__ = (
    "memory_reports",
    "pools_of",
    "read_summary",
    "records_of",
    "samples_of",
    "summarize_results",
)

STATS_NAME = "memory_stats.json"


def records_of(results: Path) -> list[InvocationRecord]:
    path = results / INVOCATIONS
    return list(read_records(path)) if path.is_file() else []


def memory_reports(results: Path, run: RunInfo) -> dict[str, MemoryReport]:
    """Each deployment's typed memory report, where it was written."""
    reports = {}
    for deployment in run.deployments:
        path = report_path_for(results / deployment.name / STATS_NAME)
        if path.is_file():
            try:
                reports[deployment.name] = read_memory_report(path)
            except (msgspec.DecodeError, OSError) as exc:
                raise SpecError(f"{path}: unreadable: {exc}") from exc
    return reports


def pools_of(results: Path, run: RunInfo) -> dict[tuple[str, str], PoolSeries]:
    """Every deployment's pools, by (deployment, function), where they were written."""
    return {
        (deployment.name, function): pool
        for deployment in run.deployments
        for function, pool in read_pools(results / deployment.name / SCALING).items()
    }


def samples_of(results: Path, deployment: str) -> list[InstanceSamples]:
    path = results / deployment / SAMPLES
    return list(read_samples(path)) if path.is_file() else []


def summarize_results(results: Path, status: Status | None = None) -> ExperimentSummary:
    """The summary of a results directory (``status`` overrides run.json's)."""
    run = read_run_info(results)
    memory_mb = {
        (d.name, function): mb for d in run.deployments for function, mb in d.memory_mb.items()
    }
    dropped: Counter[tuple[str, str]] = Counter()
    for workload_run in run.workload_runs:
        if workload_run.dropped:
            dropped[(workload_run.deployment, workload_run.function)] += workload_run.dropped
    path = results / INVOCATIONS
    return summarize(
        read_records(path) if path.is_file() else [],
        experiment=run.experiment,
        status=status or run.status,
        deployments=[d.name for d in run.deployments],
        memory=memory_reports(results, run),
        memory_mb=memory_mb,
        dropped=dropped,
        pools=pools_of(results, run),
    )


def read_summary(results: Path) -> ExperimentSummary | None:
    path = results / SUMMARY
    if not path.is_file():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=ExperimentSummary)
    except msgspec.DecodeError as exc:
        raise SpecError(f"{path}: unreadable: {exc}") from exc
