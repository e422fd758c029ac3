"""The supervisor: runs a deployment and serves its unix socket until told to stop.

It runs the deployment (sampling, supervising, checkpointing), listens on a
unix socket beside the state file (mode 0600), answers requests in order per
connection, and reports readiness (a :class:`ReadyMessage`) through the
callback its entry point gives. A stop request, SIGTERM or SIGINT ends it;
stopped by a signal, it writes the memory statistics beside the state file.
A signal while the deployment is still starting cancels the start instead
(everything made is removed), and a deployment that ends on its own (its
engine gone past the bound) ends the supervisor.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Callable
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
from .._util import first_error
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
    """Run a deployment until a stop request or SIGTERM/SIGINT; serve the socket meanwhile.

    A signal while the deployment starts cancels the start (everything
    created is removed) and reports that; a signal later stops it and writes
    the statistics beside the state file. A deployment that ends on its own
    (its engine unreachable past the bound) ends the supervisor too.
    """
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
    starting = anyio.CancelScope()
    signalled: list[str] = []
    deployment: list[Deployment] = []

    async def run(received: AsyncIterator[int]) -> None:
        async with anyio.create_task_group() as outer:

            async def signals() -> None:
                async for signum in received:
                    name = signal.Signals(signum).name
                    log.info("supervisor.signal", signal=name, starting=not deployment)
                    signalled.append(name)
                    if not deployment:
                        starting.cancel()  # the start's own cleanup removes what it made
                    stop_requested.set()
                    return

            outer.start_soon(signals)
            with starting:
                async with open_deployment(spec, state_path=state_path, supervisor=record) as dep:
                    deployment.append(dep)
                    await _serve(dep, state_path, socket_path, report, stop_requested)
            outer.cancel_scope.cancel()

    try:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            try:
                await run(received)
            except BaseExceptionGroup as group:
                raise first_error(group) from None
        if starting.cancelled_caught:
            message = f"interrupted by {signalled[0]} while starting: stopped, nothing left"
            report(ReadyMessage(ok=False, error=message, exit_code=130))
            return 130
        # Ended on its own (the engine stayed away): not what anyone asked for.
        return 1 if deployment and deployment[0].ended.is_set() else 0
    except FaaslabError as exc:
        report(ReadyMessage(ok=False, error=str(exc), exit_code=exc.exit_code))
        return exc.exit_code
    finally:
        socket_path.unlink(missing_ok=True)


async def _serve(
    dep: Deployment,
    state_path: Path,
    socket_path: Path,
    report: ReadyCallback,
    stop_requested: anyio.Event,
) -> None:
    """Answer requests until a stop (request or signal), or until the deployment ends."""
    stop_reply: list[StopReply] = []
    stop_requests = 0

    async def handle(request: Request) -> Reply:
        nonlocal stop_requests
        match request:
            case InvokeRequest(
                function=function, event=event, timeout=timeout, validate=check_output
            ):
                try:
                    invocation = await dep.invoke(function, event, timeout=timeout, check=False)
                except FaaslabError as exc:
                    return ErrorReply(type(exc).__name__, str(exc), exc.exit_code)
                verdict = None
                if check_output:
                    verdict = await _validate(dep, function, event, invocation)
                return InvokeReply(invocation, verdict)
            case StatusRequest():
                return _status(dep)
            case StopRequest(stats_path=stats_path):
                stop_requests += 1
                first = stop_requests == 1 and not stop_requested.is_set()
                result = await dep.stop(stats_path if first else None)
                if not first:
                    # Another stop did the work (or is doing it): say so, write nothing.
                    return StopReply(
                        stats_path=stop_reply[0].stats_path if stop_reply else None,
                        report_path=stop_reply[0].report_path if stop_reply else None,
                        report=result,
                        by_this_request=False,
                    )
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

        async def ended() -> None:
            await dep.ended.wait()
            log.error("supervisor.deployment_ended", reason=dep.ended_reason)
            stop_requested.set()

        tg.start_soon(serve)
        tg.start_soon(ended)
        report(ReadyMessage(ok=True, pid=os.getpid(), socket=str(socket_path)))
        await stop_requested.wait()
        if not stop_reply and not dep.ended.is_set():
            # Stopped by a signal: write the stats beside the state file.
            await dep.stop(state_path.with_name("memory_stats.json"))
        tg.cancel_scope.cancel()


def _status(dep: Deployment) -> StatusReply:
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
