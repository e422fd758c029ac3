"""The supervisor: runs a deployment and serves its unix socket until told to stop.

It runs the deployment (sampling, supervising, checkpointing), listens on a
unix socket beside the state file (mode 0600), answers requests in order per
connection, and reports readiness (a :class:`ReadyMessage`) through the
callback its entry point gives. A stop request, SIGTERM or SIGINT ends it;
stopped by a signal, it writes the memory statistics beside the state file.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog
from anyio.abc import SocketStream

from .._aggregate import report_path_for
from .._backend import owner_token
from .._deployment import Deployment, open_deployment
from .._errors import FaaslabError
from .._function import Invocation
from .._sebs import Verdict, validate
from .._spec import DeploymentSpec
from .._state import SupervisorRecord
from ._protocol import (
    MAX_LINE,
    ErrorReply,
    InvokeReply,
    InvokeRequest,
    LiveMemory,
    ReadyMessage,
    Reply,
    Request,
    StatusReply,
    StatusRequest,
    StopReply,
    StopRequest,
    decode_request,
    encode,
    socket_path_for,
)

__all__ = ("ReadyCallback", "supervise")

log = structlog.get_logger()

#: Receives the supervisor's readiness (or its failure to start), once.
ReadyCallback = Callable[[ReadyMessage], None]


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
                await stream.send(encode(ErrorReply("SpecError", "request too large", 2)) + b"\n")
                return
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    request = decode_request(line)
                except msgspec.DecodeError as exc:
                    reply: Reply = ErrorReply("SpecError", f"bad request: {exc}", 2)
                else:
                    reply = await handle(request)
                try:
                    await stream.send(encode(reply) + b"\n")
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


async def supervise(
    spec: DeploymentSpec, state_path: Path, log_path: Path, report: ReadyCallback
) -> int:
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
                report(ReadyMessage(ok=True, pid=os.getpid(), socket=str(socket_path)))
                await stop_requested.wait()
                if not stop_reply:
                    # Stopped by a signal: write the stats beside the state file.
                    await dep.stop(state_path.with_name("memory_stats.json"))
                tg.cancel_scope.cancel()
    except FaaslabError as exc:
        report(ReadyMessage(ok=False, error=str(exc), exit_code=exc.exit_code))
        return exc.exit_code
    finally:
        socket_path.unlink(missing_ok=True)
    return 0
