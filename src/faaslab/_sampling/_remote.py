"""The seam between a deployment and a sampler on another node: one TCP connection.

On Docker Swarm every node runs the same sampling worker (``_worker``) in a
task of the deployment's global sampler service (``_node`` is its entry
point). This module is the deployment's side: :func:`remote_sampling` gives
a :class:`~._client.SamplingProcess` whose worker is reached over TCP instead
of being a child process, so the pump, the subscriptions, the frames of
``_protocol`` and everything above them stay exactly as on one host.

The connection opens with the deployment's token and a newline (the node
closes anything else); after that both ways carry the existing frames only.
``Register.path`` may name ``container:<id>``: the node resolves it to that
container's cgroup memory file on its own host.
"""

from __future__ import annotations

import contextlib
import socket

import anyio
import anyio.abc
from anyio.abc import ByteReceiveStream, ByteSendStream, SocketAttribute, SocketStream

from ._client import SamplingProcess

__all__ = ("CONTAINER_PATH", "SAMPLER_PORT", "remote_sampling")

#: The port the node sampler listens on inside its task.
SAMPLER_PORT = 7070
#: ``Register.path`` prefix the node resolves to a container's memory file.
CONTAINER_PATH = "container:"
#: Bound on reaching a node's sampler and hearing its hello.
CONNECT_TIMEOUT_S = 20.0


class _Ended:
    def __init__(self) -> None:
        self.event = anyio.Event()


class _Input(ByteSendStream):
    """The worker's stdin: closing it half-closes the connection (the node sees EOF)."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def aclose(self) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await self._stream.send_eof()


class _Output(ByteReceiveStream):
    """The worker's stdout: the connection's incoming bytes until the node closes it."""

    def __init__(self, stream: SocketStream, ended: _Ended, first: bytes) -> None:
        self._stream = stream
        self._ended = ended
        self._first = first

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._first:
            first, self._first = self._first, b""
            return first
        try:
            return await self._stream.receive(max_bytes)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._ended.event.set()
            raise anyio.EndOfStream from None

    async def aclose(self) -> None:
        await self._stream.aclose()


class _NoOutput(ByteReceiveStream):
    """A node's stderr stays on the node (its task's logs): nothing comes here."""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        raise anyio.EndOfStream

    async def aclose(self) -> None:
        return None


class _Connection(anyio.abc.Process):
    """A connection to a node's sampler, dressed as the sampling process."""

    def __init__(self, stream: SocketStream, first: bytes) -> None:
        self._stream = stream
        self._ended = _Ended()
        self._stdin = _Input(stream)
        self._stdout = _Output(stream, self._ended, first)
        self._stderr = _NoOutput()

    async def aclose(self) -> None:
        await self._stream.aclose()
        self._ended.event.set()

    async def wait(self) -> int:
        await self._ended.event.wait()
        return 0

    def terminate(self) -> None:
        self.kill()

    def kill(self) -> None:
        raw = self._stream.extra(SocketAttribute.raw_socket)
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)

    def send_signal(self, signal: int) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        return 0

    @property
    def returncode(self) -> int | None:
        return 0 if self._ended.event.is_set() else None

    @property
    def stdin(self) -> ByteSendStream:
        return self._stdin

    @property
    def stdout(self) -> ByteReceiveStream:
        return self._stdout

    @property
    def stderr(self) -> ByteReceiveStream:
        return self._stderr


def remote_sampling(
    host: str,
    port: int,
    token: str,
    *,
    hello_timeout: float = 10.0,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> SamplingProcess:
    """A SamplingProcess whose worker is the node sampler at ``host:port``.

    Start it with ``await tg.start(sampling.run)``, as the local one.
    """

    async def connect() -> anyio.abc.Process:
        # A task that has just started may not listen yet, nor its gateway
        # forward yet: until the worker's first bytes (its hello) arrive, a
        # refused or closed connection is tried again, within a bound.
        # A wrong token looks the same (the node closes): it ends at the bound.
        deadline = anyio.current_time() + connect_timeout
        while True:
            stream: SocketStream | None = None
            try:
                with anyio.fail_after(max(0.1, deadline - anyio.current_time())):
                    stream = await anyio.connect_tcp(host, port)
                    await stream.send(token.encode() + b"\n")
                    first = await stream.receive(65536)
                return _Connection(stream, first)
            except (OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                if stream is not None:
                    with anyio.CancelScope(shield=True):
                        await stream.aclose()
                if anyio.current_time() >= deadline:
                    raise OSError(f"no node sampler answers at {host}:{port}: {exc}") from exc
            await anyio.sleep(0.2)

    # Registering resolves a container's cgroup on the node first: a little slower.
    return SamplingProcess(connect=connect, hello_timeout=hello_timeout, register_timeout=15.0)
