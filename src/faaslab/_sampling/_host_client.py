"""A deployment's connection to the host sampler (``_hostd``).

:class:`HostSampler` has the methods of :class:`~._client.SamplingProcess`
(``run``, ``register``, ``unregister``, ``statistics``, ``pid``,
``priority``), so the Sampler actor and the Deployment use either. Instead of
a child of its own it connects to the one sampling process of the host (or
of a node, over TCP), starting it first when none answers (``_launch``), and
attaches as its deployment::

    sampler = HostSampler(deployment_id, token=token, engine=engine.endpoint)
    await tg.start(sampler.run)
    sub = await sampler.register(container_id, files.usage, interval_ms=1.0)

When the host sampler dies, ``run`` connects again (which starts a new one),
registers every live key again, and each subscription receives the deadlines
lost meanwhile as one batch with ``lost`` set (see ``_pump``); ``restarts``
counts how often that happened. More than ``max_restarts`` within
``restart_window_s`` fails ``run`` with SamplingError, as a dead private
worker does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections import deque

import anyio
import anyio.abc
import msgspec
import structlog
from anyio.abc import SocketStream

from .._errors import SamplingError
from ._address import SamplerAddress, default_address, parse_address
from ._launch import ensure_host_sampler
from ._protocol import (
    PROTOCOL_VERSION,
    Attach,
    Denied,
    FrameReader,
    Hello,
    HostCommand,
    Shutdown,
    Status,
    StatusQuery,
    WorkerEvent,
    decode_event,
    encode_frame,
)
from ._pump import SamplingClient
from ._subscription import SampleSubscription

__all__ = ("HostSampler", "sampler_status", "stop_host_sampler")

log = structlog.get_logger()

_READ_SIZE = 1024 * 1024
#: Connecting right as a sampler exits (idle) can meet a closing socket: try again.
_CONNECT_ATTEMPTS = 3


async def _open_stream(address: SamplerAddress) -> SocketStream:
    if address.kind == "unix":
        return await anyio.connect_unix(address.path)
    return await anyio.connect_tcp(address.host, address.port)


async def _read_events(stream: SocketStream, reader: FrameReader) -> list[WorkerEvent]:
    """The next events; raises EndOfStream when the sampler hung up."""
    try:
        chunk = await stream.receive(_READ_SIZE)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        raise anyio.EndOfStream from None
    try:
        return [decode_event(body) for body in reader.feed(chunk)]
    except (msgspec.DecodeError, ValueError) as exc:  # a bug, not bad luck
        raise SamplingError(f"corrupt frame from the host sampler: {exc}") from exc


class HostSampler(SamplingClient):
    """One deployment's connection to the host sampler; see the module docstring."""

    def __init__(
        self,
        deployment_id: str,
        *,
        token: str = "",
        engine: str = "",
        address: SamplerAddress | str | None = None,
        idle_exit_s: float | None = None,
        buffer_batches: int = 16,
        connect_timeout: float = 30.0,
        register_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        max_restarts: int = 5,
        restart_window_s: float = 60.0,
    ) -> None:
        super().__init__(buffer_batches=buffer_batches, register_timeout=register_timeout)
        if isinstance(address, str):
            address = parse_address(address)
        self.address = address or default_address()
        self._attach = Attach(
            protocol=PROTOCOL_VERSION,
            deployment=deployment_id,
            token=token,
            engine=engine,
            client=f"pid {os.getpid()} on {socket.gethostname()}",
        )
        self._idle_exit_s = idle_exit_s
        self._connect_timeout = connect_timeout
        self._stop_timeout = stop_timeout
        self._max_restarts = max_restarts
        self._restart_window_s = restart_window_s
        self._stream: SocketStream | None = None
        self._reader = FrameReader()
        self._send_lock = anyio.Lock()
        self._connected = anyio.Event()
        self._restart_times: deque[float] = deque()
        #: How often the host sampler died under us and was replaced.
        self.restarts = 0

    @property
    def lost_deadlines(self) -> int:
        """Deadlines lost while the host sampler was down, over every key."""
        return sum(state.lost for state in self._keys.values())

    # -- running -------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[SamplingClient] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect (starting the host sampler if need be), then serve until
        cancelled; ``task_status.started(self)`` once attached."""
        if self._started:
            raise RuntimeError("a HostSampler runs once")
        self._started = True
        died = False
        try:
            early = await self._connect()
            log.info("sampler.attached", pid=self.pid, priority=self.priority, at=str(self.address))
            task_status.started(self)
            while True:
                await self._pump(early)
                died = True
                await self._close_stream()
                self._lost_connection()
                early = await self._connect()
                died = False
                self.restarts += 1
                log.warning("sampler.restarted", pid=self.pid, restarts=self.restarts)
                for state in self._active():
                    await self._send_command(state.command())
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop(died=died)

    async def _connect(self) -> list[WorkerEvent]:
        """Attach to a host sampler; the events that came with its Hello."""
        last: Exception | None = None
        with anyio.move_on_after(self._connect_timeout) as scope:
            for _ in range(_CONNECT_ATTEMPTS):
                if self.address.kind == "unix":
                    await anyio.to_thread.run_sync(
                        lambda: ensure_host_sampler(
                            self.address,
                            idle_exit_s=self._idle_exit_s,
                            timeout=self._connect_timeout,
                        )
                    )
                try:
                    stream = await _open_stream(self.address)
                except OSError as exc:
                    last = exc
                    continue
                try:
                    events = await self._attach_to(stream)
                except anyio.EndOfStream:
                    last = ConnectionError("the host sampler hung up before its hello")
                    await stream.aclose()
                    continue
                except BaseException:
                    await stream.aclose()
                    raise
                self._stream = stream
                self._connected.set()
                return events
        why = f"no answer within {self._connect_timeout:g} s" if scope.cancel_called else last
        raise SamplingError(f"cannot reach the host sampler at {self.address}: {why}")

    async def _attach_to(self, stream: SocketStream) -> list[WorkerEvent]:
        self._reader = FrameReader()
        await stream.send(encode_frame(self._attach))
        while True:
            events = await _read_events(stream, self._reader)
            for index, event in enumerate(events):
                if isinstance(event, Denied):
                    raise SamplingError(
                        f"the host sampler at {self.address} refused deployment "
                        f"{self._attach.deployment!r}: {event.error}"
                    )
                if isinstance(event, Hello):
                    self._hello = event
                    return events[index + 1 :]

    async def _pump(self, early: list[WorkerEvent]) -> None:
        """Dispatch frames until the connection ends."""
        stream = self._stream
        assert stream is not None
        for event in early:
            await self._dispatch(event, blocking=True)
        while True:
            try:
                events = await _read_events(stream, self._reader)
            except anyio.EndOfStream:
                return
            for event in events:
                await self._dispatch(event, blocking=True)

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError, anyio.BrokenResourceError):
                await stream.aclose()

    def _lost_connection(self) -> None:
        """The host sampler went away: note where every key stood, within budget."""
        self._connected = anyio.Event()
        self._interrupted()
        now = time.monotonic()
        self._restart_times.append(now)
        while self._restart_times and now - self._restart_times[0] > self._restart_window_s:
            self._restart_times.popleft()
        log.warning("sampler.connection_lost", pid=self.pid, keys=len(self._active()))
        if len(self._restart_times) > self._max_restarts:
            raise SamplingError(
                f"the host sampler died {len(self._restart_times)} times within "
                f"{self._restart_window_s:g} s; giving up"
            )

    async def _stop(self, *, died: bool) -> None:
        """Shutdown this connection, drain what is left, close; end every key."""
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.move_on_after(self._stop_timeout):
                with contextlib.suppress(
                    anyio.BrokenResourceError, anyio.ClosedResourceError, OSError
                ):
                    await stream.send(encode_frame(Shutdown()))
                    while True:
                        try:
                            events = await _read_events(stream, self._reader)
                        except (anyio.EndOfStream, SamplingError):
                            break
                        for event in events:
                            await self._dispatch(event, blocking=False)
            await stream.aclose()
        self._finish_all("sampling process died" if died else "sampling process stopped")
        log.info("sampler.detached", restarts=self.restarts, lost_deadlines=self.lost_deadlines)

    # -- commands --------------------------------------------------------------

    async def _ready_for_commands(self) -> None:
        if not self._started or self._stopping:
            raise SamplingError("the sampling process is not running")
        if not self._connected.is_set():  # the host sampler is being replaced
            with anyio.move_on_after(self._connect_timeout):
                await self._connected.wait()
            if not self._connected.is_set() or self._stopping:
                raise SamplingError("the host sampler is not back")

    async def _send_command(self, command: HostCommand) -> None:
        stream = self._stream
        if stream is None:
            raise SamplingError("the host sampler is not connected")
        try:
            async with self._send_lock:
                await stream.send(encode_frame(command))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise SamplingError(f"the host sampler is gone: {exc!r}") from exc

    async def register(
        self, key: str, path: str, interval_ms: float, *, container: str = ""
    ) -> SampleSubscription:
        """As :meth:`SamplingClient.register`; `container` defaults to `key`."""
        return await super().register(key, path, interval_ms, container=container or key)

    async def unregister(self, key: str) -> None:
        """As :meth:`SamplingClient.unregister`; while the host sampler is
        being replaced, the key simply ends here (it is not registered again)."""
        state = self._keys.get(key)
        if state is not None and not state.ended and not self._stopping and self._stream is None:
            self._finish(state, self._end_of(state, "unregistered"))
            return
        await super().unregister(key)


# -- for the CLI and doctor ---------------------------------------------------------------


async def sampler_status(
    address: SamplerAddress | None = None, *, timeout: float = 5.0
) -> Status | None:
    """What the host sampler says about itself; None when none answers (none is started)."""
    address = address or default_address()
    try:
        stream = await _open_stream(address)
    except OSError:
        return None
    reader = FrameReader()
    async with stream:
        with anyio.fail_after(timeout):
            await stream.send(encode_frame(StatusQuery()))
            while True:
                try:
                    events = await _read_events(stream, reader)
                except anyio.EndOfStream:
                    return None  # it was exiting
                for event in events:
                    if isinstance(event, Status):
                        return event


async def stop_host_sampler(
    address: SamplerAddress | None = None, *, force: bool = False, timeout: float = 10.0
) -> Status | None:
    """SIGTERM the host sampler and wait for it to exit; its last status, or
    None when none was running. Refuses while deployments are attached,
    unless forced (they would start another at once)."""
    status = await sampler_status(address)
    if status is None:
        return None
    if status.deployments and not force:
        raise SamplingError(
            f"the host sampler (pid {status.pid}) serves {status.deployments} deployment(s): "
            "stop them first, or pass --force (they then start a new one)"
        )
    try:
        pidfd = os.pidfd_open(status.pid)
    except ProcessLookupError:
        return status
    try:
        os.kill(status.pid, signal.SIGTERM)
        with anyio.fail_after(timeout):
            await anyio.wait_readable(pidfd)
    except TimeoutError:
        raise SamplingError(
            f"the host sampler (pid {status.pid}) did not exit within {timeout:g} s"
        ) from None
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)
    return status
