"""Summaries: per deployment and function, cold and warm apart.

Pure functions over records (and the deployments' memory reports), so the
math is tested without Docker and ``report`` recomputes exactly what ``run``
wrote. Percentiles interpolate linearly between order statistics (numpy's
and pandas' default), so they match what users compute from the records.
Latency statistics cover successful calls; failures are counted apart.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import msgspec

from .._aggregate import MemoryReport
from ._pools import PoolSeries
from ._records import InvocationRecord

__all__ = (
    "ExperimentSummary",
    "FunctionSummary",
    "LatencyStats",
    "PhaseSummary",
    "Status",
    "latency_stats",
    "percentile",
    "summarize",
)

Status = Literal["running", "complete", "interrupted", "failed"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, linearly interpolated."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q: {q}; must be in [0, 100]")
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class LatencyStats(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds."""

    count: int
    mean_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float


def latency_stats(values: Iterable[float]) -> LatencyStats | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return LatencyStats(
        count=len(ordered),
        mean_s=math.fsum(ordered) / len(ordered),
        p50_s=percentile(ordered, 50),
        p95_s=percentile(ordered, 95),
        p99_s=percentile(ordered, 99),
        max_s=ordered[-1],
    )


class PhaseSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Cold or warm calls of one function: how many, how many failed, and latency."""

    calls: int = 0
    errors: int = 0
    latency: LatencyStats | None = None


class FunctionSummary(msgspec.Struct, frozen=True, kw_only=True):
    deployment: str
    function: str
    memory_mb: int | None = None
    calls: int
    errors: int
    #: Failures by exception class ("ValueError", "InvocationTimeout", ...).
    error_types: dict[str, int] = {}
    #: Open-loop arrivals dropped at the in-flight cap (not calls, not errors).
    dropped: int = 0
    cold: PhaseSummary
    warm: PhaseSummary
    #: Cold-mode calls: the fresh containers' create-to-ready times.
    container_start: LatencyStats | None = None
    #: Wall time the function's workload runs spanned, summed.
    active_s: float
    #: Successful calls per second of ``active_s``.
    throughput_per_s: float | None = None
    #: Per-call memory peaks (bytes): their mean and max.
    call_peak_mean_bytes: float | None = None
    call_peak_max_bytes: int | None = None
    #: The instances' sampled memory over their lives (bytes): mean (sample-weighted), max.
    memory_mean_bytes: float | None = None
    memory_max_bytes: int | None = None
    #: The kernel's own watermark, the largest over the instances.
    memory_kernel_peak_bytes: int | None = None
    #: Calls that waited for an instance to start (the platform's cold starts,
    #: as ATC'20 counts them), and the share of successful calls that did.
    cold_starts: int = 0
    cold_fraction: float | None = None
    #: How long those calls waited for their instance (the call's whole step
    #: less its HTTP round trip: what the cold start added), successful ones.
    cold_start_wait: LatencyStats | None = None
    #: The pool, over the deployment's life (``<deployment>/scaling.json``): its
    #: policy, the most instances alive at once, memory limit x instance-seconds
    #: alive without serving, and (seconds since the run began, instances alive).
    policy: str | None = None
    max_instances_seen: int | None = None
    idle_memory_mb_s: float | None = None
    instances_over_time: list[tuple[float, int]] = []
    #: The pool's own counts: instances started, those a call waited for, calls
    #: that waited (= ``cold_starts`` when every call of the pool is recorded).
    instances_started: int | None = None
    pool_cold_starts: int | None = None
    pool_cold_calls: int | None = None
    #: Per-call CPU time of the instance's cgroup (µs): mean, max and total.
    cpu_time_mean_us: float | None = None
    cpu_time_max_us: int | None = None
    cpu_time_total_us: int | None = None


class ExperimentSummary(msgspec.Struct, frozen=True, kw_only=True):
    """summary.json."""

    version: int = 1
    experiment: str
    status: Status
    calls: int
    errors: int
    dropped: int = 0
    functions: list[FunctionSummary] = []


def is_cold(record: InvocationRecord) -> bool:
    """Cold as the runtime said; a call that got no answer counts as its workload intended."""
    return record.is_cold if record.is_cold is not None else record.start == "cold"


class _Group:
    """What is gathered of one (deployment, function) while the records stream by."""

    def __init__(self) -> None:
        self.latency: dict[bool, list[float]] = {True: [], False: []}
        self.calls: Counter[bool] = Counter()
        self.errors: Counter[bool] = Counter()
        self.error_types: Counter[str] = Counter()
        self.starts: list[float] = []
        self.peaks: list[int] = []
        self.cpu: list[int] = []
        self.cold_starts = 0
        self.cold_ok = 0
        self.cold_waits: list[float] = []
        self.spans: dict[tuple[str, int], tuple[float, float]] = {}

    def add(self, record: InvocationRecord) -> None:
        cold = is_cold(record)
        self.calls[cold] += 1
        if record.error is not None:
            self.errors[cold] += 1
            self.error_types[record.error.type] += 1
        elif record.latency_s is not None:
            self.latency[cold].append(record.latency_s)
        if record.container_start_s is not None:
            self.starts.append(record.container_start_s)
        if record.memory_peak_bytes is not None:
            self.peaks.append(record.memory_peak_bytes)
        if record.cpu_time_us is not None:
            self.cpu.append(record.cpu_time_us)
        if record.cold_start:
            self.cold_starts += 1
            if record.error is None and record.latency_s is not None:
                self.cold_ok += 1
                self.cold_waits.append(max(0.0, record.t_end - record.t_start - record.latency_s))
        key = (record.workload, record.repetition)
        first, last = self.spans.get(key, (record.t_start, record.t_end))
        self.spans[key] = (min(first, record.t_start), max(last, record.t_end))

    def phase(self, cold: bool) -> PhaseSummary:
        return PhaseSummary(
            calls=self.calls[cold],
            errors=self.errors[cold],
            latency=latency_stats(self.latency[cold]),
        )


def _memory_of(report: MemoryReport | None, function: str) -> tuple[float | None, ...]:
    """Sample-weighted mean, max and kernel peak over the function's instances."""
    if report is None:
        return None, None, None
    instances = [i for i in report.instances if i.function == function]
    weighted = [(i.mean_bytes, i.samples) for i in instances if i.mean_bytes is not None]
    samples = sum(n for _, n in weighted)
    mean = sum(m * n for m, n in weighted) / samples if samples else None
    maxima = [i.max_bytes for i in instances if i.max_bytes is not None]
    peaks = [i.kernel_peak_bytes for i in instances if i.kernel_peak_bytes is not None]
    return mean, max(maxima, default=None), max(peaks, default=None)


def _pool_fields(pool: PoolSeries | None) -> dict[str, Any]:
    if pool is None:
        return {}
    return {
        "policy": pool.policy,
        "max_instances_seen": pool.max_alive,
        "idle_memory_mb_s": pool.idle_memory_mb_s,
        "instances_over_time": pool.alive_timeline,
        "instances_started": pool.starts,
        "pool_cold_starts": pool.cold_starts,
        "pool_cold_calls": pool.cold_calls,
    }


def summarize(
    records: Iterable[InvocationRecord],
    *,
    experiment: str,
    status: Status,
    deployments: Sequence[str] = (),
    memory: Mapping[str, MemoryReport] | None = None,
    memory_mb: Mapping[tuple[str, str], int] | None = None,
    dropped: Mapping[tuple[str, str], int] | None = None,
    pools: Mapping[tuple[str, str], PoolSeries] | None = None,
) -> ExperimentSummary:
    """Summarize records (streamed once) per deployment and function.

    ``deployments`` orders the result (others follow in order of appearance);
    ``memory`` maps deployment names to their memory reports; ``memory_mb``,
    ``dropped`` and ``pools`` are keyed by (deployment, function).
    """
    groups: dict[tuple[str, str], _Group] = defaultdict(_Group)
    for record in records:
        groups[(record.deployment, record.function)].add(record)
    for key in [*(dropped or {}), *(pools or {})]:
        groups.setdefault(key, _Group())
    order = {name: i for i, name in enumerate(deployments)}
    keys = sorted(groups, key=lambda k: order.get(k[0], len(order)))
    functions = []
    for key in keys:
        group = groups[key]
        deployment, function = key
        ok = sum(len(v) for v in group.latency.values())
        active = sum(last - first for first, last in group.spans.values())
        mean, maximum, kernel_peak = _memory_of((memory or {}).get(deployment), function)
        pool = (pools or {}).get(key)
        functions.append(
            FunctionSummary(
                deployment=deployment,
                function=function,
                memory_mb=(memory_mb or {}).get(key),
                calls=sum(group.calls.values()),
                errors=sum(group.errors.values()),
                error_types=dict(group.error_types),
                dropped=(dropped or {}).get(key, 0),
                cold=group.phase(True),
                warm=group.phase(False),
                container_start=latency_stats(group.starts),
                active_s=active,
                throughput_per_s=ok / active if active > 0 else None,
                call_peak_mean_bytes=(
                    math.fsum(group.peaks) / len(group.peaks) if group.peaks else None
                ),
                call_peak_max_bytes=max(group.peaks, default=None),
                memory_mean_bytes=mean,
                memory_max_bytes=int(maximum) if maximum is not None else None,
                memory_kernel_peak_bytes=int(kernel_peak) if kernel_peak is not None else None,
                cold_starts=group.cold_starts,
                cold_fraction=group.cold_ok / ok if ok else None,
                cold_start_wait=latency_stats(group.cold_waits),
                cpu_time_mean_us=math.fsum(group.cpu) / len(group.cpu) if group.cpu else None,
                cpu_time_max_us=max(group.cpu, default=None),
                cpu_time_total_us=sum(group.cpu) if group.cpu else None,
                **_pool_fields(pool),
            )
        )
    return ExperimentSummary(
        experiment=experiment,
        status=status,
        calls=sum(f.calls for f in functions),
        errors=sum(f.errors for f in functions),
        dropped=sum(f.dropped for f in functions),
        functions=functions,
    )
