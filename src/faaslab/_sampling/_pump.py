"""What every client of a sampling process shares, whatever the transport.

:class:`SamplingClient` fans the frames of one sampling process out to one
:class:`SampleSubscription` per registered key; its subclasses own the
transport: :class:`~._client.SamplingProcess` a private worker's pipes,
:class:`~._host_client.HostSampler` a connection to the host sampler::

    await tg.start(client.run)            # the owner's task group
    sub = await client.register("fn/0", files.usage, interval_ms=1.0)
    async for batch in sub:               # SampleBatch, until the file goes away
        aggregate.add(batch)
    sub.end                               # SamplingEnd(reason, samples, late, skipped)

Backpressure, on purpose: every stream is bounded. A consumer that falls
behind first fills its own subscription (``buffer_batches`` batches, about
``buffer_batches * 50 ms`` of data); then the pump waits for it, which holds
back every key of this client. The sampling process keeps sampling into its
own output buffer meanwhile (see ``_loop``). A consumer that leaves should
say so: ``await client.unregister(key)`` and ``await sub.aclose()``, or simply
drop the subscription (its batches are then dropped and counted, never
waited for).

When a key is registered again after its sampling process was replaced (the
host sampler died and another took over), the deadlines of the old grid that
never reached us are delivered as one empty batch with ``lost`` (and
``late``) set, so that they are counted like every other missed deadline.
"""

from __future__ import annotations

import contextlib
import weakref
from array import array

import anyio
import anyio.abc
import structlog
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import SamplingError
from ._grid import lost_deadlines
from ._protocol import (
    Batch,
    Ended,
    Hello,
    HostCommand,
    Refused,
    Register,
    Registered,
    Unregister,
    WorkerEvent,
    unpack_int64,
)
from ._subscription import (
    KeyStatistics,
    SampleBatch,
    SampleSubscription,
    SamplingEnd,
    SamplingStatistics,
)

__all__ = ("KeyState", "SamplingClient")

log = structlog.get_logger()


class KeyState:
    """The pump's side of one key."""

    __slots__ = (
        "accounted",
        "base",
        "batches",
        "container",
        "dropped",
        "ended",
        "interval_ns",
        "key",
        "late",
        "lost",
        "path",
        "refusal",
        "registered",
        "resumed_from",
        "samples",
        "send",
        "skipped",
        "subscription",
        "t0_ns",
    )

    def __init__(
        self,
        subscription: SampleSubscription,
        send: MemoryObjectSendStream[SampleBatch],
        *,
        interval_ns: int,
        container: str,
    ) -> None:
        self.key = subscription.key
        self.path = subscription.path
        self.interval_ns = interval_ns
        self.container = container
        # Weak: a subscription its consumer dropped is collected, which closes
        # its stream, so the pump drops its batches instead of waiting forever.
        self.subscription = weakref.ref(subscription)
        self.send = send
        self.registered = anyio.Event()
        self.refusal: str | None = None
        self.ended = False
        self.batches = self.samples = self.late = self.skipped = self.dropped = 0
        self.lost = 0
        #: (samples, late, skipped, lost) of earlier subscriptions of this key:
        #: statistics accumulate over them, a subscription's end does not.
        self.base = (0, 0, 0, 0)
        #: The current registration's first deadline, and how many of its
        #: deadlines reached us (sampled or skipped).
        self.t0_ns: int | None = None
        self.accounted = 0
        #: (t0_ns, accounted) of the registration a restart interrupted.
        self.resumed_from: tuple[int, int] | None = None

    def command(self) -> Register:
        return Register(
            key=self.key, path=self.path, interval_ns=self.interval_ns, container=self.container
        )


class SamplingClient:
    """The client side of a sampling process; subclasses provide ``run`` and
    the transport (``_send_command``, and feeding frames to ``_dispatch``)."""

    def __init__(self, *, buffer_batches: int, register_timeout: float) -> None:
        self._buffer_batches = buffer_batches
        self._register_timeout = register_timeout
        self._keys: dict[str, KeyState] = {}
        self._hello: Hello | None = None
        self._started = False
        self._stopping = False

    # -- public --------------------------------------------------------------

    @property
    def priority(self) -> str | None:
        """The scheduling the sampling process got ("SCHED_FIFO 20", "nice -20",
        "normal"); None before it said hello."""
        return self._hello.priority if self._hello else None

    @property
    def pid(self) -> int | None:
        return self._hello.pid if self._hello else None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[SamplingClient] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; ``task_status.started(self)`` once connected."""
        raise NotImplementedError

    async def register(
        self, key: str, path: str, interval_ms: float, *, container: str = ""
    ) -> SampleSubscription:
        """Sample `path` every `interval_ms` ms (fractions allowed) under `key`.

        `container` names the container whose memory file `path` is (the host
        sampler checks it belongs to this client's deployment; a HostSampler
        defaults it to `key`, which is what the Sampler actor uses: the
        container id). A private SamplingProcess ignores it.
        """
        await self._ready_for_commands()
        interval_ns = round(interval_ms * 1_000_000)
        if interval_ns <= 0:
            raise SamplingError(f"sampling interval must be positive, got {interval_ms} ms")
        previous = self._keys.get(key)
        if previous is not None and not previous.ended:
            raise SamplingError(f"{key!r} is already being sampled")
        send, receive = anyio.create_memory_object_stream[SampleBatch](self._buffer_batches)
        subscription = SampleSubscription(key, path, interval_ms, receive)
        state = KeyState(subscription, send, interval_ns=interval_ns, container=container)
        if previous is not None:  # statistics of a reused key accumulate
            state.batches, state.samples = previous.batches, previous.samples
            state.late, state.skipped = previous.late, previous.skipped
            state.dropped, state.lost = previous.dropped, previous.lost
            state.base = (state.samples, state.late, state.skipped, state.lost)
        self._keys[key] = state
        try:
            await self._send_command(state.command())
            with anyio.move_on_after(self._register_timeout):
                await state.registered.wait()
        except BaseException:
            # Cancelled (or the process failed) before the caller got the
            # subscription: nobody else could ever close its streams.
            state.ended = True
            send.close()
            receive.close()
            raise
        if state.refusal is not None or not state.registered.is_set():
            state.ended = True
            send.close()
            receive.close()
            if state.refusal is None:  # it may yet start: make sure it stops
                with contextlib.suppress(SamplingError):
                    await self._send_command(Unregister(key=key))
            why = state.refusal or f"no answer within {self._register_timeout} s"
            what = f"container {container[:12]}" if container else f"{path} for {key!r}"
            raise SamplingError(f"cannot sample {what}: {why}")
        return subscription

    async def unregister(self, key: str) -> None:
        """Stop sampling `key`. Returns at once; the subscription delivers its
        last batches and then ends with reason "unregistered". A no-op for a
        key that has ended, or once the client is stopping or gone (its
        subscriptions end anyway): safe in any teardown."""
        state = self._keys.get(key)
        if state is None or state.ended or self._stopping:
            return
        with contextlib.suppress(SamplingError):
            await self._send_command(Unregister(key=key))

    def statistics(self) -> SamplingStatistics:
        keys = tuple(
            KeyStatistics(
                key=key,
                batches=s.batches,
                samples=s.samples,
                late=s.late,
                skipped=s.skipped,
                dropped_batches=s.dropped,
                ended=s.ended,
                lost=s.lost,
            )
            for key, s in self._keys.items()
        )
        return SamplingStatistics(
            pid=self.pid,
            priority=self.priority,
            running=self._hello is not None and not self._stopping,
            keys=keys,
        )

    # -- for the transports ----------------------------------------------------

    async def _send_command(self, command: HostCommand) -> None:
        raise NotImplementedError

    async def _ready_for_commands(self) -> None:
        if self._hello is None or self._stopping:
            raise SamplingError("the sampling process is not running")

    def _active(self) -> list[KeyState]:
        return [state for state in self._keys.values() if not state.ended]

    async def _dispatch(self, event: WorkerEvent, *, blocking: bool) -> None:
        match event:
            case Batch(key=key):
                state = self._keys.get(key)
                if state is None or state.ended:
                    return
                batch = SampleBatch(
                    key=key,
                    times=unpack_int64(event.times),
                    values=unpack_int64(event.values),
                    lateness=unpack_int64(event.lateness),
                    late=event.late,
                    skipped=event.skipped,
                )
                state.batches += 1
                state.samples += len(batch.times)
                state.late += event.late
                state.skipped += event.skipped
                state.accounted += len(batch.times) + event.skipped
                await self._deliver(state, batch, blocking=blocking)
            case Registered(key=key, t0_ns=t0, path=path):
                state = self._keys.get(key)
                if state is not None:
                    await self._registered(state, t0, path, blocking=blocking)
            case Refused(key=key, error=error):
                state = self._keys.get(key)
                if state is None:
                    return
                if state.resumed_from is not None:  # a restart, not the caller's register
                    reason = f"not sampled again after the sampler restarted: {error}"
                    self._finish(state, self._end_of(state, reason))
                state.refusal = error
                state.registered.set()
            case Ended(key=key):
                state = self._keys.get(key)
                if state is not None and not state.ended:
                    self._finish(state, self._end_of(state, event.reason))
                    log.debug("sampler.key_ended", key=key, reason=event.reason)
            case _:
                log.warning("sampler.unexpected_frame", frame=type(event).__name__)

    async def _registered(self, state: KeyState, t0: int, path: str, *, blocking: bool) -> None:
        subscription = state.subscription()
        if subscription is not None:
            subscription.t0_ns = t0
            subscription.path = path or subscription.path  # the file the sampler found
        resumed, state.resumed_from = state.resumed_from, None
        old_t0, accounted = resumed if resumed is not None else (None, 0)
        state.t0_ns, state.accounted = t0, 0
        state.registered.set()
        if old_t0 is None:
            return
        lost = lost_deadlines(old_t0, accounted, t0, state.interval_ns)
        if lost:
            state.lost += lost
            state.late += lost
            empty = array("q")
            batch = SampleBatch(
                key=state.key, times=empty, values=empty, lateness=empty, late=lost,
                skipped=0, lost=lost,
            )  # fmt: skip
            await self._deliver(state, batch, blocking=blocking)
        log.info("sampler.key_resumed", key=state.key, lost_deadlines=lost)

    def _interrupted(self) -> None:
        """The sampling process went away: remember where every key stood, so
        that registering it again counts the deadlines lost meanwhile."""
        for state in self._active():
            if state.t0_ns is not None:
                state.resumed_from = (state.t0_ns, state.accounted)
            state.t0_ns = None

    async def _deliver(self, state: KeyState, batch: SampleBatch, *, blocking: bool) -> None:
        try:
            if blocking:
                await state.send.send(batch)
            else:
                state.send.send_nowait(batch)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.WouldBlock):
            state.dropped += 1

    def _end_of(self, state: KeyState, reason: str) -> SamplingEnd:
        """This subscription's figures (over every sampling process that served it)."""
        samples, late, skipped, lost = state.base
        return SamplingEnd(
            state.key,
            reason,
            state.samples - samples,
            state.late - late,
            state.skipped - skipped,
            state.lost - lost,
        )

    def _finish(self, state: KeyState, end: SamplingEnd) -> None:
        state.ended = True
        state.registered.set()  # a register() still waiting gives up
        state.send.close()
        subscription = state.subscription()
        if subscription is not None:
            subscription.end = end
            subscription.drain_and_close()

    def _finish_all(self, reason: str) -> None:
        for state in self._active():
            self._finish(state, self._end_of(state, reason))
