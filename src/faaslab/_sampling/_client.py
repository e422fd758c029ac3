"""The asyncio (anyio) side of the sampling process.

:class:`SamplingProcess` owns one worker process (``_worker.py``) and fans
its batches out to one :class:`SampleSubscription` per registered file::

    proc = SamplingProcess()
    await tg.start(proc.run)              # the deployment's task group
    sub = await proc.register("fn/0", files.usage, interval_ms=1.0)
    async for batch in sub:               # SampleBatch, until the file goes away
        aggregate.update(batch.values, times=batch.times, lateness=batch.lateness,
                         late=batch.late)
    sub.end                               # SamplingEnd(reason, samples, late, skipped)

Backpressure, on purpose: every stream is bounded. A consumer that falls
behind first fills its own subscription (``buffer_batches`` batches, about
``buffer_batches * 50 ms`` of data); then the pump waits for it, which holds
back every key. The worker does not notice at first: it keeps sampling into
its own output buffer (non-blocking writes; up to 64 MiB, over a minute of
32 files at 1 ms). Only beyond that does it block, and the deadlines it
loses meanwhile are counted as late, so the damage shows in the figures.
We prefer this to dropping (silent loss) or an unbounded buffer in the pump
(memory growth inside the event loop). A consumer that leaves should say so:
``await proc.unregister(key)`` (the worker stops reading the file) and
``await sub.aclose()`` or simply dropping the subscription (its batches are
then dropped and counted, never waited for).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import anyio
import anyio.abc
import msgspec
import structlog
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import SamplingError
from ._protocol import (
    Batch,
    Ended,
    FrameReader,
    Hello,
    HostCommand,
    Refused,
    Register,
    Registered,
    Shutdown,
    Unregister,
    WorkerEvent,
    decode_event,
    encode_frame,
    unpack_int64,
)
from ._subscription import (
    KeyStatistics,
    SampleBatch,
    SampleSubscription,
    SamplingEnd,
    SamplingStatistics,
)

__all__ = ("SamplingProcess",)

log = structlog.get_logger()

_STDERR_LINES = 40
_READ_SIZE = 1024 * 1024


class _KeyState:
    """The pump's side of one key."""

    __slots__ = (
        "batches",
        "dropped",
        "ended",
        "key",
        "late",
        "refusal",
        "registered",
        "samples",
        "send",
        "skipped",
        "subscription",
    )

    def __init__(
        self, subscription: SampleSubscription, send: MemoryObjectSendStream[SampleBatch]
    ) -> None:
        self.key = subscription.key
        # Weak: a subscription its consumer dropped is collected, which closes
        # its stream, so the pump drops its batches instead of waiting forever.
        self.subscription = weakref.ref(subscription)
        self.send = send
        self.registered = anyio.Event()
        self.refusal: str | None = None
        self.ended = False
        self.batches = self.samples = self.late = self.skipped = self.dropped = 0


class SamplingProcess:
    """One sampling worker process and the pump that reads it.

    Start it in the owner's task group with ``await tg.start(proc.run)``; it
    runs until cancelled, then stops the worker (Shutdown, bounded wait, kill)
    under a shielded scope. ``run`` raises SamplingError when the worker cannot
    start or dies; the subscriptions then end with reason "sampling process died".
    """

    def __init__(
        self,
        *,
        buffer_batches: int = 16,
        hello_timeout: float = 10.0,
        register_timeout: float = 5.0,
        stop_timeout: float = 5.0,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        connect: Callable[[], Awaitable[anyio.abc.Process]] | None = None,
    ) -> None:
        self._buffer_batches = buffer_batches
        self._hello_timeout = hello_timeout
        self._register_timeout = register_timeout
        self._stop_timeout = stop_timeout
        self._command = list(command or [sys.executable, "-m", "faaslab._sampling._worker"])
        self._env = dict(env) if env is not None else _worker_environment()
        #: How the worker is reached: a child process by default; ``_remote``
        #: gives a TCP connection to a node's sampler dressed as one.
        self._connect = connect
        self._keys: dict[str, _KeyState] = {}
        self._frames = FrameReader()
        self._stdin_lock = anyio.Lock()
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self._stderr_closed = anyio.Event()
        self._process: anyio.abc.Process | None = None
        self._hello: Hello | None = None
        self._started = False
        self._stopping = False

    # -- public --------------------------------------------------------------

    @property
    def priority(self) -> str | None:
        """The scheduling the worker got ("SCHED_FIFO 20", "nice -20", "normal");
        None before it said hello."""
        return self._hello.priority if self._hello else None

    @property
    def pid(self) -> int | None:
        return self._hello.pid if self._hello else None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[SamplingProcess] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the worker until cancelled; ``task_status.started(self)`` after its hello."""
        if self._started:
            raise RuntimeError("a SamplingProcess runs once")
        self._started = True
        try:
            if self._connect is not None:
                process = await self._connect()
            else:
                process = await anyio.open_process(
                    self._command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self._env,
                )
        except OSError as exc:
            raise SamplingError(f"cannot start the sampling process: {exc}") from exc
        self._process = process
        failure: SamplingError | None = None
        async with process:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._read_stderr, process)
                    try:
                        await self._wait_hello(process)
                        log.info("sampler.started", pid=self.pid, priority=self.priority)
                        task_status.started(self)
                        await self._pump(process, blocking=True)
                        # Our stdout ended without our asking: the worker died.
                        await self._raise_died(process)
                    except SamplingError as exc:
                        # Raised outside the task group, unwrapped, for tg.start().
                        failure = exc
                        tg.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._stop(process)
        if failure is not None:
            raise failure

    async def register(self, key: str, path: str, interval_ms: float) -> SampleSubscription:
        """Sample `path` every `interval_ms` ms (fractions allowed) under `key`."""
        self._require_running()
        interval_ns = round(interval_ms * 1_000_000)
        if interval_ns <= 0:
            raise SamplingError(f"sampling interval must be positive, got {interval_ms} ms")
        previous = self._keys.get(key)
        if previous is not None and not previous.ended:
            raise SamplingError(f"{key!r} is already being sampled")
        send, receive = anyio.create_memory_object_stream[SampleBatch](self._buffer_batches)
        subscription = SampleSubscription(key, path, interval_ms, receive)
        state = _KeyState(subscription, send)
        if previous is not None:  # statistics of a reused key accumulate
            state.batches, state.samples = previous.batches, previous.samples
            state.late, state.skipped = previous.late, previous.skipped
            state.dropped = previous.dropped
        self._keys[key] = state
        try:
            await self._send_command(Register(key=key, path=path, interval_ns=interval_ns))
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
            raise SamplingError(f"cannot sample {path} for {key!r}: {why}")
        return subscription

    async def unregister(self, key: str) -> None:
        """Stop sampling `key`. Returns at once; the subscription delivers its
        last batches and then ends with reason "unregistered". A no-op for a
        key that has ended, or once the process is stopping or gone (its
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
            )
            for key, s in self._keys.items()
        )
        return SamplingStatistics(
            pid=self.pid,
            priority=self.priority,
            running=self._hello is not None and not self._stopping,
            keys=keys,
        )

    # -- the pump --------------------------------------------------------------

    async def _wait_hello(self, process: anyio.abc.Process) -> None:
        assert process.stdout is not None
        with anyio.move_on_after(self._hello_timeout):
            while self._hello is None:
                try:
                    chunk = await process.stdout.receive(_READ_SIZE)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    await self._raise_died(process, before_hello=True)
                for event in self._decode(chunk):
                    if not isinstance(event, Hello):
                        raise SamplingError(f"sampling process spoke before hello: {event!r}")
                    self._hello = event
        if self._hello is None:
            raise SamplingError(
                f"the sampling process did not say hello within {self._hello_timeout} s"
                + self._stderr_text()
            )

    async def _pump(self, process: anyio.abc.Process, *, blocking: bool) -> None:
        """Dispatch frames until the worker's stdout ends. Not blocking: used
        while stopping, where a full subscription must not hold us up."""
        assert process.stdout is not None
        while True:
            try:
                chunk = await process.stdout.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            for event in self._decode(chunk):
                await self._dispatch(event, blocking=blocking)

    def _decode(self, chunk: bytes) -> list[WorkerEvent]:
        try:
            return [decode_event(body) for body in self._frames.feed(chunk)]
        except (msgspec.DecodeError, ValueError) as exc:  # a bug, not bad luck
            raise SamplingError(f"corrupt frame from the sampling process: {exc}") from exc

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
                await self._deliver(state, batch, blocking=blocking)
            case Registered(key=key, t0_ns=t0):
                state = self._keys.get(key)
                if state is not None:
                    subscription = state.subscription()
                    if subscription is not None:
                        subscription.t0_ns = t0
                    state.registered.set()
            case Refused(key=key, error=error):
                state = self._keys.get(key)
                if state is not None:
                    state.refusal = error
                    state.registered.set()
            case Ended(key=key):
                state = self._keys.get(key)
                if state is not None and not state.ended:
                    end = SamplingEnd(key, event.reason, event.samples, event.late, event.skipped)
                    self._finish(state, end)
                    log.debug("sampler.key_ended", key=key, reason=event.reason)
            case Hello():
                log.warning("sampler.unexpected_hello")

    async def _deliver(self, state: _KeyState, batch: SampleBatch, *, blocking: bool) -> None:
        try:
            if blocking:
                await state.send.send(batch)
            else:
                state.send.send_nowait(batch)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.WouldBlock):
            state.dropped += 1

    def _finish(self, state: _KeyState, end: SamplingEnd) -> None:
        state.ended = True
        state.registered.set()  # a register() still waiting gives up
        state.send.close()
        subscription = state.subscription()
        if subscription is not None:
            subscription.end = end
            subscription.drain_and_close()

    # -- commands, stderr, stopping ------------------------------------------------

    def _require_running(self) -> None:
        if self._hello is None or self._stopping:
            raise SamplingError("the sampling process is not running")

    async def _send_command(self, command: HostCommand) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise SamplingError("the sampling process is not running")
        try:
            async with self._stdin_lock:
                await process.stdin.send(encode_frame(command))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise SamplingError(f"the sampling process is gone: {exc!r}") from exc

    async def _read_stderr(self, process: anyio.abc.Process) -> None:
        assert process.stderr is not None
        pending = b""
        try:
            async for chunk in process.stderr:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    text = line.decode(errors="replace")
                    self._stderr_tail.append(text)
                    log.warning("sampler.stderr", line=text)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            if pending:
                self._stderr_tail.append(pending.decode(errors="replace"))
            self._stderr_closed.set()

    def _stderr_text(self) -> str:
        if not self._stderr_tail:
            return ""
        return "\n--- sampling process stderr ---\n" + "\n".join(self._stderr_tail)

    async def _raise_died(
        self, process: anyio.abc.Process, *, before_hello: bool = False
    ) -> NoReturn:
        with anyio.move_on_after(2):
            await self._stderr_closed.wait()
            await process.wait()
        code = process.returncode
        when = "before saying hello" if before_hello else "unexpectedly"
        raise SamplingError(
            f"the sampling process exited {when} (exit code {code})" + self._stderr_text()
        )

    async def _stop(self, process: anyio.abc.Process) -> None:
        """Shutdown, drain what is left (without blocking on subscribers), wait, kill."""
        self._stopping = True
        died = process.returncode is not None
        with anyio.move_on_after(self._stop_timeout):
            with contextlib.suppress(SamplingError, anyio.BrokenResourceError, OSError):
                await self._send_command(Shutdown())
                assert process.stdin is not None
                await process.stdin.aclose()
            await self._pump(process, blocking=False)
            await process.wait()
        if process.returncode is None:
            log.warning("sampler.killed", pid=process.pid, after_s=self._stop_timeout)
            process.kill()
            await process.wait()
        reason = "sampling process died" if died else "sampling process stopped"
        for state in self._keys.values():
            if not state.ended:
                end = SamplingEnd(state.key, reason, state.samples, state.late, state.skipped)
                self._finish(state, end)
        log.info("sampler.stopped", pid=process.pid, returncode=process.returncode)


def _worker_environment() -> dict[str, str]:
    """Our environment, with this faaslab first on the worker's path (so that
    a source checkout samples with the same code it runs)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_root + (os.pathsep + existing if existing else "")
    return env
