"""What a subscriber of the sampling process receives: batches, the end,
and statistics snapshots. The pump that feeds them lives in ``_client``."""

from __future__ import annotations

from array import array
from collections import deque

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream

__all__ = (
    "KeyStatistics",
    "SampleBatch",
    "SampleSubscription",
    "SamplingEnd",
    "SamplingStatistics",
)


class SampleBatch(msgspec.Struct, frozen=True):
    """Consecutive samples of one key. The arrays have equal lengths."""

    key: str
    #: time.monotonic_ns() at each read.
    times: array[int]
    #: Bytes read (the cgroup's usage, page cache included).
    values: array[int]
    #: Read time minus its deadline, ns.
    lateness: array[int]
    #: Deadlines of this stretch not met within one interval (late + skipped + lost).
    late: int
    #: Deadlines skipped without a sample because the worker fell behind.
    skipped: int
    #: Deadlines lost while no sampling process served this key (the host
    #: sampler died and another took over); counted in ``late`` too.
    lost: int = 0


class SamplingEnd(msgspec.Struct, frozen=True):
    """Why and after how much a subscription ended."""

    key: str
    #: "cgroup removed", "file removed", "unregistered", "shutdown",
    #: "sampling process stopped", "sampling process died", ...
    reason: str
    samples: int
    late: int
    skipped: int
    #: Deadlines lost while no sampling process served the key.
    lost: int = 0


class KeyStatistics(msgspec.Struct, frozen=True):
    key: str
    batches: int
    samples: int
    late: int
    skipped: int
    #: Batches dropped because the subscriber had closed its end.
    dropped_batches: int
    ended: bool
    lost: int = 0


class SamplingStatistics(msgspec.Struct, frozen=True):
    """An immutable snapshot of a sampling client (SamplingProcess, HostSampler)."""

    pid: int | None
    priority: str | None
    running: bool
    keys: tuple[KeyStatistics, ...]


class SampleSubscription:
    """The batches of one registered file, as an async iterator.

    Iteration ends when the worker stops sampling the file (the container's
    cgroup went away, unregister, shutdown); :attr:`end` then says why.
    """

    def __init__(
        self,
        key: str,
        path: str,
        interval_ms: float,
        receive: MemoryObjectReceiveStream[SampleBatch],
    ) -> None:
        self.key = key
        self.path = path
        self.interval_ms = interval_ms
        #: Deadlines are t0_ns + k * interval (monotonic clock), set once registered.
        self.t0_ns: int | None = None
        #: Set when the stream has ended.
        self.end: SamplingEnd | None = None
        self._receive = receive
        self._leftover: deque[SampleBatch] = deque()

    def __aiter__(self) -> SampleSubscription:
        return self

    async def __anext__(self) -> SampleBatch:
        if self._leftover:
            return self._leftover.popleft()
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            # The end may have come while we waited: drain_and_close kept
            # what was buffered then.
            if self._leftover:
                return self._leftover.popleft()
            self._receive.close()
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop receiving: further batches for this key are dropped (and counted)."""
        await self._receive.aclose()

    def close(self) -> None:
        """Stop receiving at once (synchronous: safe in any ``finally``)."""
        self._receive.close()

    def drain_and_close(self) -> None:
        """At the end (the pump has closed its side): keep what is still
        buffered and close the stream, so no stream outlives its data."""
        while True:
            try:
                self._leftover.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        self._receive.close()

    def __del__(self) -> None:
        # The subscription owns its stream: nothing else could ever read it.
        self._receive.close()

    def __repr__(self) -> str:
        return f"<SampleSubscription {self.key!r} {self.path} every {self.interval_ms} ms>"
