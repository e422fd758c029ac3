"""Per-instance memory samples for the memory-over-time plot.

The raw profile (every sample, binary) lives with the deployment and is gone
when it closes; this writes a compact copy beside the memory reports: one
JSON line per instance, times in seconds on the run's clock, at most
``MAX_POINTS`` points per instance. Longer series are cut into equal buckets
and each bucket keeps its largest sample, so peaks survive the thinning.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence

import msgspec

from .._aggregate import MeasurementRecord, ProfileReader

__all__ = ("MAX_POINTS", "InstanceSamples", "read_samples", "thin", "write_samples")

MAX_POINTS = 4000


class InstanceSamples(msgspec.Struct, frozen=True, kw_only=True):
    deployment: str
    function: str
    instance: str
    container_id: str
    #: Samples in the profile, and how many of them each point stands for (max of a bucket).
    samples: int
    bucket: int
    t_s: list[float]
    bytes: list[int]


def thin(
    times_ns: Sequence[int], values: Sequence[int], bucket: int
) -> tuple[list[int], list[int]]:
    """Each run of ``bucket`` samples as its largest one (the time of that sample)."""
    if bucket <= 1:
        return list(times_ns), list(values)
    times: list[int] = []
    kept: list[int] = []
    for start in range(0, len(values), bucket):
        chunk = values[start : start + bucket]
        best = max(range(len(chunk)), key=chunk.__getitem__)
        times.append(times_ns[start + best])
        kept.append(chunk[best])
    return times, kept


def _series(reader: ProfileReader, key: str, bucket: int) -> tuple[list[int], list[int]]:
    # Buckets must not straddle chunks unevenly: collect the (bounded) key's
    # samples chunk by chunk, thinning whenever a full bucket is available.
    times: list[int] = []
    values: list[int] = []
    pending_t: list[int] = []
    pending_v: list[int] = []
    for chunk in reader.chunks(key):
        pending_t.extend(chunk.times)
        pending_v.extend(chunk.values)
        whole = len(pending_v) - len(pending_v) % bucket
        t, v = thin(pending_t[:whole], pending_v[:whole], bucket)
        times += t
        values += v
        del pending_t[:whole], pending_v[:whole]
    t, v = thin(pending_t, pending_v, bucket)
    return times + t, values + v


def write_samples(
    path: str | os.PathLike[str],
    profile: str | os.PathLike[str],
    records: Sequence[MeasurementRecord],
    *,
    deployment: str,
    epoch_ns: int,
    max_points: int = MAX_POINTS,
) -> int:
    """Write one line per measured instance; return the number of instances written."""
    reader = ProfileReader(profile)
    written = 0
    with open(path, "wb") as out:
        for record in records:
            count = reader.count(record.container_id)
            if not count:
                continue
            bucket = max(1, math.ceil(count / max_points))
            times, values = _series(reader, record.container_id, bucket)
            line = InstanceSamples(
                deployment=deployment,
                function=record.function,
                instance=record.instance,
                container_id=record.container_id,
                samples=count,
                bucket=bucket,
                t_s=[round((t - epoch_ns) / 1e9, 6) for t in times],
                bytes=values,
            )
            out.write(msgspec.json.encode(line) + b"\n")
            written += 1
    return written


_decoder = msgspec.json.Decoder(InstanceSamples)


def read_samples(path: str | os.PathLike[str]) -> Iterator[InstanceSamples]:
    with open(path, "rb") as file:
        for line in file:
            if line.strip():
                yield _decoder.decode(line)
