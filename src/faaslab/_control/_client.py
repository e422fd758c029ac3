"""Talking to a supervisor: one connection (:func:`connect`), and spawning one.

``faaslab start`` spawns ``python -m faaslab._control`` in a session of its
own (:func:`spawn_supervisor`) and waits for its :class:`ReadyMessage`;
``invoke``, ``status`` and ``stop`` connect to its socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
from anyio.abc import SocketStream

from .._errors import FaaslabError
from .._spec import DeploymentSpec
from .._util import read_line
from ._protocol import ReadyMessage, Reply, Request, decode_ready, decode_reply, encode

__all__ = ("ControlClient", "connect", "spawn_supervisor")


class ControlClient:
    """One connection to a supervisor; requests are answered in order."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def request(self, request: Request) -> Reply:
        await self._stream.send(encode(request) + b"\n")
        while b"\n" not in self._buffer:
            try:
                chunk = await self._stream.receive(1 << 20)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                raise FaaslabError("the supervisor closed the connection") from None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply: Reply = decode_reply(line)
        return reply


@asynccontextmanager
async def connect(socket_path: Path) -> AsyncIterator[ControlClient]:
    """Connect to a supervisor; FaaslabError when none listens there."""
    try:
        stream = await anyio.connect_unix(socket_path)
    except OSError as exc:
        raise FaaslabError(f"no supervisor answers at {socket_path}: {exc.strerror}") from exc
    async with stream:
        yield ControlClient(stream)


def spawn_supervisor(spec: DeploymentSpec, state_path: Path, *, timeout: float) -> ReadyMessage:
    """Start the detached supervisor; return once it is ready, or raise its error."""
    workdir = state_path.with_name(f"{state_path.name}.d")
    workdir.mkdir(mode=0o700, exist_ok=True)
    spec_file = workdir / "spec.json"
    spec_file.write_bytes(msgspec.json.encode(spec))
    log_path = workdir / "supervisor.log"
    read_fd, write_fd = os.pipe()
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faaslab._control",
                "--spec",
                str(spec_file),
                "--state",
                str(state_path),
                "--log",
                str(log_path),
                "--ready-fd",
                str(write_fd),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            pass_fds=(write_fd,),
            start_new_session=True,  # outlives `start`; Ctrl-C in its shell does not reach it
        )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        try:
            line = read_line(pipe.fileno(), timeout)
        except TimeoutError:
            raise FaaslabError(f"the supervisor did not report within {timeout:g} s") from None
        except KeyboardInterrupt:
            # Ctrl-C reaches only us (the supervisor has a session of its own):
            # pass it on, and wait until its start is undone.
            _interrupt(process, pipe.fileno())
            raise _Interrupted() from None
    if not line:
        process.poll()
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise FaaslabError(
            f"the supervisor (pid {process.pid}) ended before it was ready; its log "
            f"{log_path}:\n" + "\n".join(tail)
        )
    try:
        message = decode_ready(line)
    except msgspec.DecodeError as exc:
        raise FaaslabError(f"the supervisor (pid {process.pid}) reported nonsense: {exc}") from exc
    if not message.ok:
        error = FaaslabError(message.error or "the supervisor failed to start (see its log)")
        error.exit_code = message.exit_code
        raise error
    return message


#: How long an interrupted start may take to remove what it made.
INTERRUPT_BOUND_S = 120.0


class _Interrupted(FaaslabError):
    """Ctrl-C during ``start``: the supervisor undid the start."""

    exit_code = 130

    def __init__(self) -> None:
        super().__init__("interrupted: the deployment was stopped while starting (nothing left)")


def _interrupt(process: subprocess.Popen[bytes], pipe_fd: int) -> None:
    """SIGTERM the starting supervisor, then wait (bounded) for its report and its exit."""
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError, KeyboardInterrupt):
        read_line(pipe_fd, INTERRUPT_BOUND_S)  # its "interrupted" report, or the pipe closing
    try:
        process.wait(timeout=INTERRUPT_BOUND_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

