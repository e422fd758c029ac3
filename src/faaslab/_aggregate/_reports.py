"""Memory reports: SeBS's ``memory_stats.json`` and faaslab's typed report.

SeBS's shape, kept exactly so its users' scripts keep working::

    {"<full container id>": {"mean mem. usage": "<mean/1e6> MB",
                             "max mem. usage": "<max/1e6> MB",
                             "number of measurements": n,
                             "full profile (in bytes)": [b, b, ...]},
     ...,
     "precision_errors": n}

The full profile is streamed from the binary profile file, chunk by chunk
(one line of JSON per stored chunk, integers written by msgspec): stopping
a deployment never holds a whole profile in memory (measured: 10 million
samples in 0.4-0.7 s and +1 MB of RSS, where SeBS's text parsing takes ~9 s
and +380 MB; see benchmarks/bench_profile_stop.py). MB figures are
``f"{round(bytes / 1e6, 6)} MB"``: a Python float like SeBS writes, rounded
to the byte (6 decimals of a MB), e.g. "12.345678 MB" or "0.0 MB". SeBS
writes "precision_errors" only when non-zero; we always write it. Its
meaning is kept: deadlines not met within one interval, for whatever reason
— a late read, a deadline skipped because the sampler fell behind, or a
deadline lost while the host sampler was down and being replaced (the typed
report tells the three apart: ``skipped_deadlines``, ``lost_deadlines``).

:class:`MemoryReport` is the richer typed result written beside it
(``memory_report.json``), versioned for schema evolution. Both are built at
stop from the Sampler actors' records (:func:`write_reports`), or after a
crash from the last checkpoint's; only the full-profile lists stream from the
profile file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

import msgspec

from ._histogram import RELATIVE_ERROR
from ._memory import MemoryAggregateSnapshot
from ._profile import ProfileReader
from ._record import MeasurementRecord

__all__ = (
    "FIGURE_CGROUP",
    "FIGURE_DOCKER_STATS",
    "InstanceMemory",
    "MemoryReport",
    "build_report",
    "incomplete_now",
    "instance_memory",
    "read_memory_report",
    "report_path_for",
    "sebs_megabytes",
    "write_memory_report",
    "write_reports",
    "write_sebs_memory_stats",
)

#: What the bytes mean, per source (the two differ by the page cache).
FIGURE_CGROUP = "cgroup memory usage, page cache included (memory.usage_in_bytes / memory.current)"
FIGURE_DOCKER_STATS = (
    "Docker stats API usage minus inactive file cache, sampled by the daemon about once a second"
)


def sebs_megabytes(value: float | None) -> str:
    """SeBS's "<x> MB" (1 MB = 1e6 bytes), rounded to the byte."""
    return f"{round((value or 0) / 1e6, 6)} MB"


@contextmanager
def _atomic_binary(path: Path) -> Iterator[BinaryIO]:
    """Write `path` whole or not at all (temporary file, then rename)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            yield file
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# msgspec writes integers ~4x faster than repr() or json: it sets the pace of a stop.
_json = msgspec.json.Encoder()


def write_sebs_memory_stats(
    path: str | os.PathLike[str],
    instances: Sequence[tuple[str, MemoryAggregateSnapshot]],
    profile: ProfileReader,
    precision_errors: int,
    *,
    profile_keys: Mapping[str, str] | None = None,
) -> None:
    """Write SeBS's memory statistics for (container id, aggregate snapshot) pairs.

    Each container's profile is read from `profile` under its container id,
    or under ``profile_keys[container_id]`` when given. "number of
    measurements" is the length of the profile list written (equal to the
    aggregate's count unless a crash cut the profile's tail); mean and max
    come from the aggregate (exact).
    """
    keys = profile_keys or {}
    with _atomic_binary(Path(path)) as out:
        out.write(b"{")
        for container_id, snapshot in instances:
            key = keys.get(container_id, container_id)
            count = profile.count(key)
            head = (
                f"\n  {json.dumps(container_id)}: {{\n"
                f'    "mean mem. usage": "{sebs_megabytes(snapshot.mean)}",\n'
                f'    "max mem. usage": "{sebs_megabytes(snapshot.maximum)}",\n'
                f'    "number of measurements": {count},\n'
                '    "full profile (in bytes)": ['
            )
            out.write(head.encode())
            separator = b"\n      "
            for values in profile.values(key):
                out.write(separator)
                out.write(_json.encode(values.tolist())[1:-1])  # one line per stored chunk
                separator = b",\n      "
            out.write(b"\n    ]\n  }," if count else b"]\n  },")
        out.write(f'\n  "precision_errors": {int(precision_errors)}\n}}\n'.encode())


class InstanceMemory(msgspec.Struct, frozen=True, kw_only=True):
    """Memory of one instance (one container) over its life."""

    function: str
    instance: int
    container_id: str
    #: "cgroup" (our sampler) or "docker-stats" (the fallback).
    source: Literal["cgroup", "docker-stats"]
    #: What the byte figures mean (they differ by source).
    figure: str = FIGURE_CGROUP
    cgroup_layout: str | None = None
    usage_file: str | None = None
    interval_ms: float
    samples: int
    #: Deadlines not met within one interval (SeBS's "precision errors").
    precision_errors: int
    #: Of those, deadlines skipped without a sample.
    skipped_deadlines: int = 0
    #: Of those, deadlines lost while the host sampler was down (it died and
    #: the next use started another); no sample exists for them.
    lost_deadlines: int = 0
    lateness_p50_us: float | None = None
    lateness_p99_us: float | None = None
    lateness_max_us: float | None = None
    mean_bytes: float | None = None
    min_bytes: int | None = None
    max_bytes: int | None = None
    p50_bytes: int | None = None
    p95_bytes: int | None = None
    p99_bytes: int | None = None
    #: The kernel's own watermark (memory.max_usage_in_bytes / memory.peak).
    kernel_peak_bytes: int | None = None
    #: True when the watermark was reset when sampling began (else: since the cgroup began).
    kernel_peak_reset: bool = False
    #: time.monotonic_ns() of the first and last samples.
    first_sample_ns: int | None = None
    last_sample_ns: int | None = None
    #: Why sampling ended ("cgroup removed", "unregistered", ...).
    end_reason: str | None = None
    #: After a supervisor died: samples it cannot have written, at most (None: nothing lost).
    lost_samples_at_most: int | None = None
    #: The node that ran the container (multi-node backends); None for this host.
    node: str | None = None
    #: Why the stats API served instead of cgroup files (e.g. no sampler on its node).
    fallback_reason: str | None = None


class MemoryReport(msgspec.Struct, frozen=True, kw_only=True):
    """faaslab's typed memory results of one deployment (memory_report.json)."""

    version: int = 1
    deployment: str = ""
    #: The sampling process's scheduling ("SCHED_FIFO 20", "nice -20", "normal").
    sampler_priority: str | None = None
    #: How often the host sampler died under this deployment and was replaced.
    sampler_restarts: int = 0
    #: Deadlines lost while it was down, over every instance (the sum of the
    #: instances' ``lost_deadlines``, which their ``precision_errors`` include).
    lost_deadlines: int = 0
    #: Bound on the relative error of every percentile in this report.
    percentile_relative_error: float = RELATIVE_ERROR
    #: False when the supervisor died before stopping cleanly.
    complete: bool = True
    incomplete_reason: str | None = None
    #: ISO 8601 UTC time at which the report was found incomplete.
    incomplete_time: str | None = None
    instances: tuple[InstanceMemory, ...] = ()


def _us(ns: int | None) -> float | None:
    return None if ns is None else ns / 1000


def instance_memory(
    snapshot: MemoryAggregateSnapshot,
    *,
    function: str,
    instance: int,
    container_id: str,
    interval_ms: float,
    source: Literal["cgroup", "docker-stats"] = "cgroup",
    cgroup_layout: str | None = None,
    usage_file: str | None = None,
    kernel_peak_bytes: int | None = None,
    kernel_peak_reset: bool = False,
    end_reason: str | None = None,
    lost_samples_at_most: int | None = None,
) -> InstanceMemory:
    """The report entry of one instance, from its aggregate's snapshot."""
    return InstanceMemory(
        function=function,
        instance=instance,
        container_id=container_id,
        source=source,
        figure=FIGURE_CGROUP if source == "cgroup" else FIGURE_DOCKER_STATS,
        cgroup_layout=cgroup_layout,
        usage_file=usage_file,
        interval_ms=interval_ms,
        samples=snapshot.count,
        precision_errors=snapshot.late,
        skipped_deadlines=snapshot.skipped,
        lost_deadlines=snapshot.lost,
        lateness_p50_us=_us(snapshot.lateness_p50_ns),
        lateness_p99_us=_us(snapshot.lateness_p99_ns),
        lateness_max_us=_us(snapshot.lateness_max_ns),
        mean_bytes=snapshot.mean,
        min_bytes=snapshot.minimum,
        max_bytes=snapshot.maximum,
        p50_bytes=snapshot.p50,
        p95_bytes=snapshot.p95,
        p99_bytes=snapshot.p99,
        kernel_peak_bytes=kernel_peak_bytes,
        kernel_peak_reset=kernel_peak_reset,
        first_sample_ns=snapshot.first_ns,
        last_sample_ns=snapshot.last_ns,
        end_reason=end_reason,
        lost_samples_at_most=lost_samples_at_most,
    )


def incomplete_now() -> str:
    """The current UTC time in the form of MemoryReport.incomplete_time."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


_report_decoder = msgspec.json.Decoder(MemoryReport)


def write_memory_report(path: str | os.PathLike[str], report: MemoryReport) -> None:
    """Write `report` as pretty JSON, atomically."""
    text = msgspec.json.format(msgspec.json.encode(report), indent=2)
    with _atomic_binary(Path(path)) as out:
        out.write(text + b"\n")


def read_memory_report(path: str | os.PathLike[str]) -> MemoryReport:
    return _report_decoder.decode(Path(path).read_bytes())


# -- from the Sampler actors' records ----------------------------------------


def report_path_for(stats_path: Path) -> Path:
    """Where the typed report goes beside SeBS's file."""
    if stats_path.name == "memory_stats.json":
        return stats_path.with_name("memory_report.json")
    return stats_path.with_name(f"{stats_path.stem}.report.json")


def build_report(
    deployment_id: str,
    records: Sequence[MeasurementRecord],
    *,
    sampler_priority: str | None,
    incomplete_reason: str | None = None,
    lost: Mapping[str, int] | None = None,
    sampler_restarts: int = 0,
) -> MemoryReport:
    """The typed report; ``lost`` gives, per container id, samples lost at most."""
    lost = lost or {}
    return MemoryReport(
        deployment=deployment_id,
        sampler_priority=sampler_priority,
        sampler_restarts=sampler_restarts,
        lost_deadlines=sum(r.snapshot.lost for r in records),
        complete=incomplete_reason is None,
        incomplete_reason=incomplete_reason,
        incomplete_time=incomplete_now() if incomplete_reason else None,
        instances=tuple(
            msgspec.structs.replace(
                instance_memory(
                    r.snapshot,
                    function=r.function,
                    instance=r.index,
                    container_id=r.container_id,
                    interval_ms=r.interval_ms,
                    source=r.source,
                    cgroup_layout=r.layout,
                    usage_file=r.usage_file,
                    kernel_peak_bytes=r.kernel_peak_bytes,
                    kernel_peak_reset=r.kernel_peak_reset,
                    end_reason=r.end_reason,
                    lost_samples_at_most=lost.get(r.container_id),
                ),
                node=r.node,
                fallback_reason=r.fallback_reason,
            )
            for r in records
        ),
    )


def write_reports(
    stats_path: Path,
    profile_path: Path,
    deployment_id: str,
    records: Sequence[MeasurementRecord],
    *,
    sampler_priority: str | None,
    incomplete_reason: str | None = None,
    lost: Mapping[str, int] | None = None,
    sampler_restarts: int = 0,
) -> MemoryReport:
    """Write both files; return the typed report."""
    report = build_report(
        deployment_id,
        records,
        sampler_priority=sampler_priority,
        incomplete_reason=incomplete_reason,
        lost=lost,
        sampler_restarts=sampler_restarts,
    )
    precision_errors = sum(r.snapshot.late for r in records)
    reader = ProfileReader(profile_path)
    write_sebs_memory_stats(
        stats_path,
        [(r.container_id, r.snapshot) for r in records],
        reader,
        precision_errors,
    )
    write_memory_report(report_path_for(stats_path), report)
    return report
