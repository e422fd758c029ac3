"""What a checkpoint keeps of one container's measurement (no I/O).

The Sampler actor (``_sampling``) produces it; the reports at stop and the
recovery of a dead supervisor read it back from the state file.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ._memory import MemoryAggregateSnapshot

__all__ = ("MeasurementRecord", "Source")

Source = Literal["cgroup", "docker-stats"]


class MeasurementRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a checkpoint keeps of one container's measurement."""

    function: str
    instance: str
    index: int
    container_id: str
    source: Source
    interval_ms: float
    layout: str | None = None
    usage_file: str | None = None
    snapshot: MemoryAggregateSnapshot
    kernel_peak_bytes: int | None = None
    kernel_peak_reset: bool = False
    last_bytes: int | None = None
    end_reason: str | None = None
    #: The node that ran the container (multi-node backends); None for this host.
    node: str | None = None
    #: Why the stats API served instead of cgroup files (e.g. no sampler on its node).
    fallback_reason: str | None = None
