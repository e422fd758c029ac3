"""The detached supervisor process and its unix-socket protocol.

``faaslab start`` spawns ``python -m faaslab._control`` in a session of its
own. That process runs the deployment (sampling, supervising,
checkpointing), listens on a unix socket beside the state file (mode 0600)
and tells its parent over a pipe once every instance is ready — or why the
start failed. Other processes (`invoke`, `status`, `stop`) talk to it with
newline-delimited JSON messages: one tagged union of requests, one of replies.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog
from anyio.abc import SocketStream

from ._aggregate import MemoryReport
from ._deployment import Deployment, DeploymentStatistics
from ._errors import FaaslabError, StateError
from ._invocation import Invocation
from ._open import open_deployment
from ._owner import owner_token
from ._paths import state_dir
from ._reporting import report_path_for
from ._sebs import Verdict, validate
from ._spec import DeploymentSpec
from ._state import SupervisorRecord

__all__ = (
    "ControlClient",
    "ErrorReply",
    "InvokeReply",
    "InvokeRequest",
    "StatusReply",
    "StatusRequest",
    "StopReply",
    "StopRequest",
    "socket_path_for",
    "spawn_supervisor",
)

log = structlog.get_logger()

#: Bound on one request line (an event can be large, but not unbounded).
MAX_LINE = 64 * 1024 * 1024
#: Unix socket paths are limited to 107 bytes on Linux.
MAX_SOCKET_PATH = 100


# -- protocol ---------------------------------------------------------------------


class InvokeRequest(msgspec.Struct, frozen=True, tag_field="kind", tag="invoke"):
    function: str
    event: dict[str, Any]
    timeout: float | None = None
    #: Ask the SeBS benchmark's validate_output about the output.
    validate: bool = False


class StatusRequest(msgspec.Struct, frozen=True, tag_field="kind", tag="status"):
    pass


class StopRequest(msgspec.Struct, frozen=True, tag_field="kind", tag="stop"):
    stats_path: str | None = None


Request = InvokeRequest | StatusRequest | StopRequest


class ErrorReply(msgspec.Struct, frozen=True, tag_field="kind", tag="error"):
    type: str
    message: str
    exit_code: int = 1


class InvokeReply(msgspec.Struct, frozen=True, tag_field="kind", tag="invocation"):
    invocation: Invocation
    validation: Verdict | None = None


class LiveMemory(msgspec.Struct, frozen=True):
    container_id: str
    instance: str
    source: str
    samples: int
    precision_errors: int
    last_bytes: int | None
    max_bytes: int | None


class StatusReply(msgspec.Struct, frozen=True, tag_field="kind", tag="status"):
    statistics: DeploymentStatistics
    memory: list[LiveMemory]
    sampler_priority: str | None
    supervisor_pid: int


class StopReply(msgspec.Struct, frozen=True, tag_field="kind", tag="stopped"):
    stats_path: str | None
    report_path: str | None
    report: MemoryReport | None


Reply = ErrorReply | InvokeReply | StatusReply | StopReply

_encode = msgspec.json.Encoder().encode
_decode_request = msgspec.json.Decoder(Request).decode
_decode_reply = msgspec.json.Decoder(Reply).decode


def socket_path_for(state_path: Path) -> Path:
    """The supervisor's socket: beside the state file, or in the state dir when too long."""
    beside = state_path.with_name(f"{state_path.name}.sock")
    if len(str(beside)) <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(str(state_path).encode()).hexdigest()[:16]
    return state_dir() / f"{digest}.sock"


# -- client -----------------------------------------------------------------------


class ControlClient:
    """One connection to a supervisor; requests are answered in order."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def request(self, request: Request) -> Reply:
        await self._stream.send(_encode(request) + b"\n")
        while b"\n" not in self._buffer:
            try:
                chunk = await self._stream.receive(1 << 20)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                raise FaaslabError("the supervisor closed the connection") from None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply: Reply = _decode_reply(line)
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


# -- server -----------------------------------------------------------------------


async def _serve_connection(stream: SocketStream, handle: Any, stopped: anyio.Event) -> None:
    buffer = b""
    async with stream:
        while True:
            try:
                chunk = await stream.receive(1 << 20)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            buffer += chunk
            if len(buffer) > MAX_LINE:
                await stream.send(_encode(ErrorReply("SpecError", "request too large", 2)) + b"\n")
                return
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    request = _decode_request(line)
                except msgspec.DecodeError as exc:
                    reply: Reply = ErrorReply("SpecError", f"bad request: {exc}", 2)
                else:
                    reply = await handle(request)
                try:
                    await stream.send(_encode(reply) + b"\n")
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return
                finally:
                    if isinstance(reply, StopReply):
                        # Only once its reply is on its way may the supervisor end.
                        stopped.set()


async def _validate(
    dep: Deployment, function: str, event: dict[str, Any], invocation: Invocation
) -> Verdict:
    benchmark = dep.benchmarks.get(function)
    if benchmark is None:
        return Verdict("unavailable", f"{function} is not a SeBS benchmark: nothing validates it")
    if invocation.error is not None:
        return Verdict("invalid", f"the invocation failed: {invocation.error.message}")
    return await validate(benchmark, event, invocation.output, dep.storage)


async def supervise(spec: DeploymentSpec, state_path: Path, log_path: Path, report: Any) -> int:
    """Run a deployment until a stop request or SIGTERM/SIGINT; serve the socket meanwhile."""
    socket_path = socket_path_for(state_path)
    socket_path.unlink(missing_ok=True)
    record = SupervisorRecord(
        pid=os.getpid(),
        socket=str(socket_path),
        log=str(log_path),
        started_at=time.time(),
        owner=owner_token(),
    )
    stop_requested = anyio.Event()
    stop_reply: list[StopReply] = []
    try:
        async with open_deployment(spec, state_path=state_path, supervisor=record) as dep:

            async def handle(request: Request) -> Reply:
                match request:
                    case InvokeRequest(
                        function=function, event=event, timeout=timeout, validate=check_output
                    ):
                        try:
                            invocation = await dep.invoke(
                                function, event, timeout=timeout, check=False
                            )
                        except FaaslabError as exc:
                            return ErrorReply(type(exc).__name__, str(exc), exc.exit_code)
                        verdict = None
                        if check_output:
                            verdict = await _validate(dep, function, event, invocation)
                        return InvokeReply(invocation, verdict)
                    case StatusRequest():
                        records = dep.memory_records()
                        sampling = dep.state().sampling
                        return StatusReply(
                            statistics=dep.statistics(),
                            memory=[
                                LiveMemory(
                                    container_id=r.container_id,
                                    instance=r.instance,
                                    source=r.source,
                                    samples=r.snapshot.count,
                                    precision_errors=r.snapshot.late,
                                    last_bytes=r.last_bytes,
                                    max_bytes=r.snapshot.maximum,
                                )
                                for r in records
                            ],
                            sampler_priority=sampling.priority if sampling else None,
                            supervisor_pid=os.getpid(),
                        )
                    case StopRequest(stats_path=stats_path):
                        result = await dep.stop(stats_path)
                        path = Path(stats_path) if stats_path and result is not None else None
                        reply = StopReply(
                            stats_path=str(path) if path else None,
                            report_path=str(report_path_for(path)) if path else None,
                            report=result,
                        )
                        stop_reply.append(reply)
                        return reply

            listener = await anyio.create_unix_listener(socket_path)
            os.chmod(socket_path, 0o600)
            async with listener, anyio.create_task_group() as tg:

                async def serve() -> None:
                    async def one(stream: SocketStream) -> None:
                        await _serve_connection(stream, handle, stop_requested)

                    await listener.serve(one)

                async def signals() -> None:
                    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                        async for signum in received:
                            log.info("supervisor.signal", signal=signal.Signals(signum).name)
                            stop_requested.set()
                            return

                tg.start_soon(serve)
                tg.start_soon(signals)
                report({"ok": True, "pid": os.getpid(), "socket": str(socket_path)})
                await stop_requested.wait()
                if not stop_reply:
                    # Stopped by a signal: write the stats beside the state file.
                    await dep.stop(state_path.with_name("memory_stats.json"))
                tg.cancel_scope.cancel()
    except FaaslabError as exc:
        report({"ok": False, "error": str(exc), "exit_code": exc.exit_code})
        return exc.exit_code
    finally:
        socket_path.unlink(missing_ok=True)
    return 0


def spawn_supervisor(spec: DeploymentSpec, state_path: Path, *, timeout: float) -> dict[str, Any]:
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
        line = _read_line(pipe, timeout)
    if not line:
        process.poll()
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise FaaslabError(
            f"the supervisor (pid {process.pid}) ended before it was ready; its log "
            f"{log_path}:\n" + "\n".join(tail)
        )
    message: dict[str, Any] = msgspec.json.decode(line)
    if not message.get("ok"):
        error = FaaslabError(str(message.get("error")))
        error.exit_code = int(message.get("exit_code", 1))
        raise error
    return message


def _read_line(pipe: Any, timeout: float) -> bytes:
    import select

    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FaaslabError(f"the supervisor did not report within {timeout:g} s")
        ready, _, _ = select.select([pipe], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(pipe.fileno(), 65536)
        if not chunk:
            return data
        data += chunk
    return data.split(b"\n", 1)[0]


def main(argv: list[str] | None = None) -> int:
    """The supervisor process's entry point."""
    parser = argparse.ArgumentParser(prog="python -m faaslab._control")
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--ready-fd", required=True, type=int)
    args = parser.parse_args(argv)
    from ._cli import configure_logging

    configure_logging("json", debug=False)
    ready = os.fdopen(args.ready_fd, "wb")

    def report(message: dict[str, Any]) -> None:
        if not ready.closed:
            ready.write(msgspec.json.encode(message) + b"\n")
            ready.close()

    try:
        spec = msgspec.json.decode(args.spec.read_bytes(), type=DeploymentSpec)
    except (OSError, msgspec.DecodeError) as exc:
        report({"ok": False, "error": f"cannot read the spec: {exc}", "exit_code": 2})
        return 2
    try:
        return anyio.run(supervise, spec, args.state, args.log, report)
    except StateError as exc:
        report({"ok": False, "error": str(exc), "exit_code": exc.exit_code})
        return exc.exit_code
    finally:
        report({"ok": False, "error": "the supervisor ended unexpectedly (see its log)"})


if __name__ == "__main__":
    raise SystemExit(main())
