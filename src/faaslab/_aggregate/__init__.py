"""Streaming statistics of memory samples, the raw profile file, and the reports.

- :class:`MemoryAggregate` — per instance, O(batch) updates, constant memory,
  exact mean/min/max, percentiles within 0.39 %; snapshot/restore for checkpoints.
- :class:`ProfileWriter` / :class:`ProfileReader` — every sample, appended to a
  binary file and streamed back per instance.
- :func:`write_sebs_memory_stats` — SeBS's ``memory_stats.json``, streamed.
- :class:`MemoryReport` / :func:`write_memory_report` — the typed report;
  :func:`write_reports` writes both from the Sampler actors' records.
- :class:`MeasurementRecord` — what a checkpoint keeps of one container.
- :func:`salvage` — a dead supervisor's checkpoint completed from its profile.

Modules: ``_histogram`` (log-bucketed percentiles), ``_memory`` (the running
aggregate), ``_profile`` (the binary profile file), ``_record`` (the
checkpointed record), ``_reports`` (SeBS's file, the typed report),
``_salvage`` (what a dead supervisor's files still tell).
"""

from ._histogram import RELATIVE_ERROR, LogHistogram
from ._memory import MemoryAggregate, MemoryAggregateSnapshot, SampleBatchLike
from ._profile import ProfileChunk, ProfileReader, ProfileWriter
from ._record import MeasurementRecord, Source
from ._reports import (
    FIGURE_CGROUP,
    FIGURE_DOCKER_STATS,
    InstanceMemory,
    MemoryReport,
    build_report,
    incomplete_now,
    instance_memory,
    read_memory_report,
    report_path_for,
    sebs_megabytes,
    write_memory_report,
    write_reports,
    write_sebs_memory_stats,
)
from ._salvage import Salvaged, salvage

__all__ = (
    "FIGURE_CGROUP",
    "FIGURE_DOCKER_STATS",
    "RELATIVE_ERROR",
    "InstanceMemory",
    "LogHistogram",
    "MeasurementRecord",
    "MemoryAggregate",
    "MemoryAggregateSnapshot",
    "MemoryReport",
    "ProfileChunk",
    "ProfileReader",
    "ProfileWriter",
    "Salvaged",
    "SampleBatchLike",
    "Source",
    "build_report",
    "incomplete_now",
    "instance_memory",
    "read_memory_report",
    "report_path_for",
    "salvage",
    "sebs_megabytes",
    "write_memory_report",
    "write_reports",
    "write_sebs_memory_stats",
)
