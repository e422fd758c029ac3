"""A private sampling process: one worker process (``_worker.py``) of one client.

:class:`SamplingProcess` starts the worker as its child and speaks to it over
its stdin and stdout; the fan-out to subscriptions is the shared
:class:`~._pump.SamplingClient`'s (see there for the usage and the
backpressure)::

    proc = SamplingProcess()
    await tg.start(proc.run)              # the owner's task group
    sub = await proc.register("fn/0", files.usage, interval_ms=1.0)

Deployments use the host sampler (:class:`~._host_client.HostSampler`, the
same methods); this one samples any file, with no daemon and no access
check, for tools and benchmarks.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import NoReturn

import anyio
import anyio.abc
import msgspec
import structlog

from .._errors import SamplingError
from ._launch import worker_environment
from ._protocol import (
    FrameReader,
    Hello,
    HostCommand,
    Shutdown,
    WorkerEvent,
    decode_event,
    encode_frame,
)
from ._pump import SamplingClient

__all__ = ("SamplingProcess",)

log = structlog.get_logger()

_STDERR_LINES = 40
_READ_SIZE = 1024 * 1024


class SamplingProcess(SamplingClient):
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
        super().__init__(buffer_batches=buffer_batches, register_timeout=register_timeout)
        self._hello_timeout = hello_timeout
        self._stop_timeout = stop_timeout
        self._command = list(command or [sys.executable, "-m", "faaslab._sampling._worker"])
        self._env = dict(env) if env is not None else worker_environment()
        #: How the worker is reached: a child process by default; ``_remote``
        #: gives a TCP connection to a node's sampler dressed as one.
        self._connect = connect
        self._frames = FrameReader()
        self._stdin_lock = anyio.Lock()
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self._stderr_closed = anyio.Event()
        self._process: anyio.abc.Process | None = None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[SamplingClient] = anyio.TASK_STATUS_IGNORED
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

    # -- commands, stderr, stopping ------------------------------------------------

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
        self._finish_all("sampling process died" if died else "sampling process stopped")
        log.info("sampler.stopped", pid=process.pid, returncode=process.returncode)
