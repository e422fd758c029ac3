"""MemoryAggregate: the running statistics of one instance's memory samples.

Updated with each batch in O(batch) and constant memory: exact count, sum
(so an exact mean), minimum and maximum; percentiles of the bytes and of the
lateness from log-bucketed histograms (relative error <= 0.39 %, see
:mod:`._histogram`). :meth:`MemoryAggregate.snapshot` is a frozen,
msgspec-encodable Struct used for checkpoints and reports, and
:meth:`MemoryAggregate.from_snapshot` restores it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from ._histogram import RELATIVE_ERROR, LogHistogram

__all__ = ("MemoryAggregate", "MemoryAggregateSnapshot", "SampleBatchLike")

Buckets = tuple[tuple[int, int], ...]


class SampleBatchLike(Protocol):
    """What :meth:`MemoryAggregate.add` needs of a batch (a SampleBatch fits)."""

    @property
    def times(self) -> Sequence[int]: ...
    @property
    def values(self) -> Sequence[int]: ...
    @property
    def lateness(self) -> Sequence[int]: ...
    @property
    def late(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def lost(self) -> int: ...


class MemoryAggregateSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The state of a MemoryAggregate (restorable) plus its derived figures.

    Persisted in checkpoints: new fields must get defaults (schema evolution).
    """

    version: int = 1
    count: int = 0
    #: Exact sum of the bytes of all samples.
    total: int = 0
    minimum: int | None = None
    maximum: int | None = None
    #: Deadlines not met within one interval (late samples + skipped deadlines).
    late: int = 0
    #: Deadlines skipped without a sample.
    skipped: int = 0
    #: Deadlines lost while no sampling process served the instance (the host
    #: sampler died and another took over); counted in ``late`` too.
    lost: int = 0
    #: Monotonic ns of the first and last sample.
    first_ns: int | None = None
    last_ns: int | None = None
    lateness_max_ns: int | None = None
    lateness_min_ns: int | None = None
    #: (bucket key, count) of the bytes and of the lateness histograms.
    value_buckets: Buckets = ()
    lateness_buckets: Buckets = ()
    # Derived (ignored by from_snapshot), for readers without this code:
    mean: float | None = None
    p50: int | None = None
    p95: int | None = None
    p99: int | None = None
    lateness_p50_ns: int | None = None
    lateness_p99_ns: int | None = None
    #: Bound on the relative error of the percentiles above.
    percentile_relative_error: float = RELATIVE_ERROR


class MemoryAggregate:
    """Running statistics of one instance's memory samples."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.late = 0
        self.skipped = 0
        self.lost = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._values = LogHistogram()
        self._lateness = LogHistogram()

    # -- updates -----------------------------------------------------------------

    def add(self, batch: SampleBatchLike) -> None:
        """Add one batch (a SampleBatch from the sampling client)."""
        self.update(
            batch.values,
            times=batch.times,
            lateness=batch.lateness,
            late=batch.late,
            skipped=batch.skipped,
            lost=batch.lost,
        )

    def update(
        self,
        values: Sequence[int],
        *,
        times: Sequence[int] = (),
        lateness: Sequence[int] = (),
        late: int = 0,
        skipped: int = 0,
        lost: int = 0,
    ) -> None:
        """Add samples: bytes, and optionally their read times and lateness (ns)."""
        if values:
            self.count += len(values)
            self.total += sum(values)
            self._values.add_many(values)
        if times:
            if self.first_ns is None:
                self.first_ns = times[0]
            self.last_ns = times[-1]
        if lateness:
            self._lateness.add_many(lateness)
        self.late += late
        self.skipped += skipped
        self.lost += lost

    # -- figures -------------------------------------------------------------------

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def minimum(self) -> int | None:
        return self._values.minimum

    @property
    def maximum(self) -> int | None:
        return self._values.maximum

    def percentile(self, q: float) -> int | None:
        """Bytes at nearest-rank percentile q (relative error <= 0.39 %)."""
        return self._values.percentile(q)

    def lateness_percentile(self, q: float) -> int | None:
        """Lateness in ns at percentile q (relative error <= 0.39 %, exact below 256 ns)."""
        return self._lateness.percentile(q)

    @property
    def lateness_max(self) -> int | None:
        return self._lateness.maximum

    # -- snapshots -------------------------------------------------------------------

    def snapshot(self) -> MemoryAggregateSnapshot:
        return MemoryAggregateSnapshot(
            count=self.count,
            total=self.total,
            minimum=self._values.minimum,
            maximum=self._values.maximum,
            late=self.late,
            skipped=self.skipped,
            lost=self.lost,
            first_ns=self.first_ns,
            last_ns=self.last_ns,
            lateness_max_ns=self._lateness.maximum,
            lateness_min_ns=self._lateness.minimum,
            value_buckets=self._values.buckets(),
            lateness_buckets=self._lateness.buckets(),
            mean=self.mean,
            p50=self.percentile(50),
            p95=self.percentile(95),
            p99=self.percentile(99),
            lateness_p50_ns=self.lateness_percentile(50),
            lateness_p99_ns=self.lateness_percentile(99),
        )

    @classmethod
    def from_snapshot(cls, snapshot: MemoryAggregateSnapshot) -> MemoryAggregate:
        aggregate = cls()
        aggregate.count = snapshot.count
        aggregate.total = snapshot.total
        aggregate.late = snapshot.late
        aggregate.skipped = snapshot.skipped
        aggregate.lost = snapshot.lost
        aggregate.first_ns = snapshot.first_ns
        aggregate.last_ns = snapshot.last_ns
        aggregate._values = LogHistogram.from_buckets(
            snapshot.value_buckets, snapshot.minimum, snapshot.maximum
        )
        aggregate._lateness = LogHistogram.from_buckets(
            snapshot.lateness_buckets, snapshot.lateness_min_ns, snapshot.lateness_max_ns
        )
        return aggregate

    def __repr__(self) -> str:
        return (
            f"<MemoryAggregate n={self.count} mean={self.mean} max={self.maximum} late={self.late}>"
        )
