"""What a dead supervisor's last checkpoint and profile file still tell (no engine).

A supervisor killed with SIGKILL leaves two things behind: the state file's
last checkpoint (every container's aggregate, written about once a second)
and the profile file (every sample, flushed to the OS batch by batch, about
every 50 ms). :func:`salvage` restores each aggregate from the checkpoint
exactly, then adds the profile's samples taken after it, so the statistics
cover every sample that reached the file. Their lateness is not in the
profile: precision errors after the checkpoint are not counted.

What is lost is what the supervisor had not yet written when it died: it
died at most one checkpoint interval after the checkpoint (the checkpoints
say when, on the monotonic clock the samples use), so per container at most
``(checkpoint + interval - last stored sample) / sampling interval`` samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import msgspec

from ._memory import MemoryAggregate
from ._profile import ProfileReader
from ._record import MeasurementRecord

__all__ = ("Salvaged", "salvage")


class Salvaged(msgspec.Struct, frozen=True):
    """One container's measurement, completed from the profile."""

    record: MeasurementRecord
    #: Samples read from the profile past the checkpoint.
    from_profile: int
    #: Samples the supervisor cannot have written before it died, at most.
    lost_at_most: int


def salvage(
    records: Sequence[MeasurementRecord],
    profile_path: Path,
    *,
    checkpoint_ns: int | None,
    checkpoint_interval_s: float,
) -> list[Salvaged]:
    """Complete each checkpointed record with the profile's later samples."""
    reader = ProfileReader(profile_path) if profile_path.is_file() else None
    salvaged = []
    for record in records:
        aggregate = MemoryAggregate.from_snapshot(record.snapshot)
        after = record.snapshot.last_ns if record.snapshot.last_ns is not None else -1
        added = 0
        if reader is not None:
            for chunk in reader.chunks(record.container_id):
                if chunk.times[-1] <= after:
                    continue
                keep = [i for i, t in enumerate(chunk.times) if t > after]
                aggregate.update(
                    [chunk.values[i] for i in keep], times=[chunk.times[i] for i in keep]
                )
                added += len(keep)
        snapshot = aggregate.snapshot()
        lost = 0
        if record.end_reason is None and checkpoint_ns is not None and record.source == "cgroup":
            died_by = checkpoint_ns + int(checkpoint_interval_s * 1e9)
            last = snapshot.last_ns if snapshot.last_ns is not None else died_by
            interval_ns = record.interval_ms * 1e6
            lost = max(0, math.floor((died_by - last) / interval_ns))
        salvaged.append(
            Salvaged(
                record=msgspec.structs.replace(record, snapshot=snapshot),
                from_profile=added,
                lost_at_most=lost,
            )
        )
    return salvaged
