"""Memory statistics at stop: SeBS's ``memory_stats.json`` and the typed report.

Both come from the running aggregates (kept by the Sampler actors, or
restored from the last checkpoint after a crash); only SeBS's "full profile"
lists stream from the binary profile file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ._aggregate import (
    MemoryReport,
    ProfileReader,
    incomplete_now,
    instance_memory,
    write_memory_report,
    write_sebs_memory_stats,
)
from ._measure import MeasurementRecord

__all__ = ("report_path_for", "write_reports")


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
) -> MemoryReport:
    return MemoryReport(
        deployment=deployment_id,
        sampler_priority=sampler_priority,
        complete=incomplete_reason is None,
        incomplete_reason=incomplete_reason,
        incomplete_time=incomplete_now() if incomplete_reason else None,
        instances=tuple(
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
) -> MemoryReport:
    """Write both files; return the typed report."""
    report = build_report(
        deployment_id,
        records,
        sampler_priority=sampler_priority,
        incomplete_reason=incomplete_reason,
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
