"""The deployment commands of the CLI: start, invoke, status, stop, up, ps, gc.

Each takes the parsed arguments and returns an exit code; errors are raised
as FaaslabError and turned into one line by ``_cli.main``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec

from .._backend import open_engine, owner_alive
from .._control import (
    ErrorReply,
    InvokeReply,
    InvokeRequest,
    ReadyMessage,
    StatusReply,
    StatusRequest,
    StopReply,
    StopRequest,
    connect,
    spawn_supervisor,
    supervise,
)
from .._deployment import stop_orphaned
from .._errors import FaaslabError, SpecError, StateError
from .._sebs import is_sebs_benchmark
from .._spec import DeploymentSpec, FunctionSpec, SwarmSpec
from .._state import DeploymentState, check_writable, load_state
from .._storage import parse_storage_option

__all__ = (
    "add_deployment_options",
    "cmd_invoke",
    "cmd_start",
    "cmd_status",
    "cmd_stop",
    "cmd_up",
    "register",
    "spec_from_args",
)

_encode_line = msgspec.json.Encoder().encode
#: How long `stop` waits for a live supervisor before treating it as dead.
STOP_REPLY_TIMEOUT_S = 120.0


# -- options shared by start and up ------------------------------------------------


def add_deployment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "functions",
        nargs="+",
        metavar="FUNCTION_DIR",
        help="function directories (function.py with handler(event))",
    )
    parser.add_argument(
        "--deployments",
        type=int,
        default=1,
        metavar="N",
        help="instances per function (SeBS's --deployments)",
    )
    parser.add_argument(
        "--measure-interval",
        type=float,
        default=-1,
        metavar="MS",
        help="memory sampling interval in ms (fractions allowed; -1 disables)",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=256,
        metavar="MB",
        help="memory limit per instance (default 256)",
    )
    parser.add_argument("--cpus", type=float, default=1.0, help="CPUs per instance")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="per-invocation timeout (default 60)",
    )
    parser.add_argument(
        "--remove-containers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="remove containers at stop (default: yes)",
    )
    parser.add_argument("--image", default="faaslab/python:3.11", help="runtime image")
    parser.add_argument("--id", dest="deployment_id", help="deployment id (default: random)")
    parser.add_argument(
        "--storage",
        default="seaweedfs",
        metavar="KIND",
        help="seaweedfs (default), minio, none, or http://HOST:PORT (keys from "
        "FAASLAB_S3_ACCESS_KEY/FAASLAB_S3_SECRET_KEY)",
    )
    parser.add_argument(
        "--keep-storage", action="store_true", help="keep the storage data volume at stop"
    )
    parser.add_argument(
        "--size",
        default="test",
        choices=("test", "small", "large"),
        help="SeBS benchmark input size (default test)",
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="SeBS benchmark data (benchmarks-data/<benchmark>)"
    )
    parser.add_argument(
        "--backend",
        default="docker",
        choices=("docker", "swarm"),
        help="where instances run: this host's engine (default) or Docker Swarm services",
    )
    parser.add_argument(
        "--swarm-address",
        default="127.0.0.1",
        metavar="IP",
        help="swarm: the address the gateways publish on (default 127.0.0.1)",
    )
    parser.add_argument(
        "--publish",
        default="auto",
        choices=("auto", "gateway", "host"),
        help="swarm: reach tasks through gateways, or host-mode ports on their nodes "
        "(auto: gateway on one node, host on several)",
    )
    parser.add_argument(
        "--registry",
        metavar="HOST:PORT",
        help="swarm: the registry images reach the other nodes through (docs/scaling-out.md)",
    )
    parser.add_argument(
        "--placement",
        action="append",
        default=[],
        metavar="CONSTRAINT",
        help="swarm: a placement constraint for every function (node.labels.role==bench)",
    )


def _function_name(directory: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", directory.resolve().name).lstrip("_.-")
    return name[:63] or "function"


def spec_from_args(args: argparse.Namespace) -> DeploymentSpec:
    functions = []
    for directory in args.functions:
        path = Path(directory)
        memory, timeout = args.memory or 256, args.timeout or 60.0
        if is_sebs_benchmark(path):
            # SeBS's config.json gives the limits unless the command line does.
            config = json.loads((path / "config.json").read_text())
            memory = args.memory or int(config.get("memory", memory))
            timeout = args.timeout or float(config.get("timeout", timeout))
        functions.append(
            FunctionSpec(
                name=_function_name(path),
                code=str(path.resolve()),
                instances=args.deployments,
                memory_mb=memory,
                cpus=args.cpus,
                timeout_s=timeout,
                placement=list(args.placement),
            )
        )
    return DeploymentSpec(
        storage=parse_storage_option(args.storage, keep=args.keep_storage),
        sebs_size=args.size,
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
        functions=functions,
        measure_interval_ms=args.measure_interval,
        remove_containers=args.remove_containers,
        image=args.image,
        deployment_id=args.deployment_id,
        backend=args.backend,
        swarm=SwarmSpec(address=args.swarm_address, publish=args.publish, registry=args.registry),
    )


# -- start --------------------------------------------------------------------------


def _refuse_live(path: Path, force: bool) -> None:
    """Refuse to overwrite a live deployment (or a file that is not ours) without --force."""
    if not path.exists():
        return
    try:
        state = load_state(path)
    except StateError as exc:
        if force:
            return
        raise StateError(f"{exc}; refusing to overwrite it (use --force)") from exc
    if state.status == "stopped" or force:
        return
    alive = state.supervisor is not None and _supervisor_alive(state)
    if alive:
        raise StateError(
            f"{path}: deployment {state.id} is live (supervisor pid "
            f"{state.supervisor.pid if state.supervisor else '?'}): stop it first, or use --force"
        )


def _supervisor_alive(state: DeploymentState) -> bool:
    if state.supervisor is None:
        return False
    # The owner token holds the process start time: a reused pid does not match.
    return owner_alive(state.supervisor.owner) and Path(state.supervisor.socket).exists()


def cmd_start(args: argparse.Namespace) -> int:
    path = Path(args.output).absolute()
    check_writable(path)
    _refuse_live(path, args.force)
    spec = spec_from_args(args)
    started = time.monotonic()
    spawn_supervisor(spec, path, timeout=spec.start_timeout_s + 120)
    state = load_state(path)
    for record in state.functions:
        print(f"{record.instance:<24} {record.url:<22} {record.instance_id[:12]}")
    print(
        f"deployment {state.id}: {len(state.functions)} instance(s) ready in "
        f"{time.monotonic() - started:.1f} s; state in {path}",
        file=sys.stderr,
    )
    return 0


# -- invoke -------------------------------------------------------------------------


def _event_from_args(args: argparse.Namespace, state: DeploymentState) -> dict[str, Any]:
    if args.event is not None:
        try:
            event = json.loads(args.event)
        except json.JSONDecodeError as exc:
            raise SpecError(f"--event: not JSON ({exc})") from exc
    elif args.event_file is not None:
        try:
            event = json.loads(Path(args.event_file).read_text())
        except OSError as exc:
            raise SpecError(f"--event-file: {exc.strerror}: {args.event_file}") from exc
        except json.JSONDecodeError as exc:
            raise SpecError(f"--event-file: {args.event_file} is not JSON ({exc})") from exc
    elif args.input is not None:
        # The K-th input of this function (with one benchmark: SeBS's inputs[K]).
        own = [
            event
            for event, function in zip(state.inputs, state.input_functions, strict=False)
            if function == args.name
        ]
        if not 0 <= args.input < len(own):
            raise SpecError(
                f"--input {args.input}: out of range ({args.name} has {len(own)} input(s))"
            )
        event = own[args.input]
    else:
        event = {}
    if not isinstance(event, dict):
        raise SpecError(f"the event must be a JSON object, not {type(event).__name__}")
    return event


def _live_state(path: Path) -> DeploymentState:
    state = load_state(path)
    if state.status == "stopped":
        raise FaaslabError(f"{path}: deployment {state.id} is stopped")
    if not _supervisor_alive(state):
        pid = state.supervisor.pid if state.supervisor else "?"
        raise FaaslabError(
            f"{path}: the supervisor of deployment {state.id} (pid {pid}) is not running; "
            f"`faaslab stop {path}` removes what is left and writes its statistics"
        )
    return state


def cmd_invoke(args: argparse.Namespace) -> int:
    path = Path(args.deployment)
    state = _live_state(path)
    functions = {f.get("name") for f in state.spec.get("functions", [])}
    if args.name not in functions:
        raise SpecError(
            f"no function named {args.name!r} in {path} (it has: {', '.join(sorted(functions))})"
        )
    event = _event_from_args(args, state)
    if args.count < 1 or args.concurrency < 1:
        raise SpecError("-n and --concurrency must be >= 1")
    assert state.supervisor is not None
    socket_path = Path(state.supervisor.socket)
    failures = 0
    remaining = args.count

    async def worker() -> None:
        nonlocal failures, remaining
        async with connect(socket_path) as client:
            while remaining > 0:
                remaining -= 1
                reply = await client.request(
                    InvokeRequest(
                        function=args.name,
                        event=event,
                        timeout=args.timeout,
                        validate=args.validate,
                    )
                )
                if isinstance(reply, InvokeReply):
                    line = msgspec.to_builtins(reply.invocation)
                    if reply.validation is not None:
                        line["validation"] = msgspec.to_builtins(reply.validation)
                        failures += reply.validation.status in ("invalid", "error")
                    sys.stdout.buffer.write(_encode_line(line) + b"\n")
                    failures += reply.invocation.error is not None
                elif isinstance(reply, ErrorReply):
                    sys.stdout.buffer.write(
                        _encode_line({"error": {"type": reply.type, "message": reply.message}})
                        + b"\n"
                    )
                    failures += 1
                sys.stdout.flush()

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(min(args.concurrency, args.count)):
                tg.start_soon(worker)

    anyio.run(run)
    return 1 if failures else 0


# -- status ---------------------------------------------------------------------------


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f} MB"


def cmd_status(args: argparse.Namespace) -> int:
    path = Path(args.deployment)
    state = load_state(path)
    print(f"deployment {state.id}: {state.status}")
    if state.status == "stopped":
        print(f"  stopped at {time.ctime(state.stopped_at or 0)}; stats: {state.stats_path or '-'}")
        return 0
    alive = _supervisor_alive(state)
    pid = state.supervisor.pid if state.supervisor else None
    if not alive:
        print(f"  supervisor: NOT RUNNING (pid {pid}); `faaslab stop {path}` cleans up")
        for record in state.functions:
            print(f"  {record.instance:<24} {record.url:<22} last known: {record.state}")
        return 1

    async def ask() -> StatusReply:
        assert state.supervisor is not None
        async with connect(Path(state.supervisor.socket)) as client:
            reply = await client.request(StatusRequest())
        if not isinstance(reply, StatusReply):
            raise FaaslabError(f"unexpected answer from the supervisor: {reply}")
        return reply

    reply = anyio.run(ask)
    print(f"  supervisor: running (pid {pid}); sampler: {reply.sampler_priority or 'off'}")
    memory = {m.instance: m for m in reply.memory}
    print(
        f"  {'instance':<24} {'state':<10} {'restarts':>8} {'calls':>6} {'samples':>8} "
        f"{'late':>5} {'memory':>10} {'max':>10}  url"
    )
    for function in reply.statistics.functions:
        for inst in function.instances:
            m = memory.get(inst.name)
            print(
                f"  {inst.name:<24} {inst.state:<10} {inst.restarts:>8} {inst.calls:>6} "
                f"{m.samples if m else '-':>8} {m.precision_errors if m else '-':>5} "
                f"{_mb(m.last_bytes) if m else '-':>10} {_mb(m.max_bytes) if m else '-':>10}  "
                f"{inst.url or '-'}"
            )
        if function.failed:
            print(f"  function {function.name}: FAILED")
    return 0


# -- stop -----------------------------------------------------------------------------


def _wait_supervisor_exit(state: DeploymentState) -> None:
    """After its stop reply the supervisor still removes storage, network and the
    rest: return once it has exited (bounded), so nothing of it is left when we do."""
    deadline = time.monotonic() + STOP_REPLY_TIMEOUT_S
    while _supervisor_alive(state) and time.monotonic() < deadline:
        time.sleep(0.05)


def cmd_stop(args: argparse.Namespace) -> int:
    path = Path(args.deployment)
    state = load_state(path)
    if state.status == "stopped":
        print(f"deployment {state.id} is already stopped (nothing done)")
        return 0
    stats_path = Path(args.stats).absolute()
    check_writable(stats_path)

    async def via_supervisor() -> StopReply | None:
        assert state.supervisor is not None
        try:
            with anyio.fail_after(STOP_REPLY_TIMEOUT_S):
                async with connect(Path(state.supervisor.socket)) as client:
                    reply = await client.request(StopRequest(stats_path=str(stats_path)))
        except (FaaslabError, TimeoutError):
            return None
        return reply if isinstance(reply, StopReply) else None

    async def orphaned() -> None:
        async with open_engine() as engine:
            await stop_orphaned(engine, state, path, stats_path)

    if _supervisor_alive(state):
        reply = anyio.run(via_supervisor)
        if reply is not None:
            _wait_supervisor_exit(state)
            if reply.stats_path:
                print(f"memory statistics: {reply.stats_path} (typed: {reply.report_path})")
            else:
                print("memory sampling was off: no statistics written")
            print(f"deployment {state.id} stopped")
            return 0
        print("the supervisor did not answer: cleaning up by label", file=sys.stderr)
    anyio.run(orphaned)
    state = load_state(path)
    if state.stats_path:
        print(f"memory statistics (incomplete, from the last checkpoint): {state.stats_path}")
    print(f"deployment {state.id} stopped (its supervisor was gone)")
    return 0


# -- up -------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    """Foreground: start, print the table, serve until SIGINT/SIGTERM, stop, write stats."""
    spec = spec_from_args(args)
    path = Path(args.output).absolute()
    check_writable(path)
    _refuse_live(path, args.force)

    def report(message: ReadyMessage) -> None:
        if message.ok:
            state = load_state(path)
            for record in state.functions:
                print(f"{record.instance:<24} http://{record.url}/")
            print("serving; Ctrl-C stops and writes the memory statistics", file=sys.stderr)
            sys.stdout.flush()

    log_path = path.with_name(f"{path.name}.d") / "supervisor.log"
    return anyio.run(supervise, spec, path, log_path, report)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add start, up, invoke, status and stop to faaslab's command parser."""
    start = commands.add_parser("start", help="start a detached deployment (SeBS's `local start`)")
    add_deployment_options(start)
    start.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DEPLOYMENT.json",
        help="the deployment file to write",
    )
    start.add_argument("--force", action="store_true", help="overwrite a live deployment file")
    start.set_defaults(handler=cmd_start)

    up = commands.add_parser("up", help="run a deployment in the foreground until Ctrl-C")
    add_deployment_options(up)
    up.add_argument(
        "-o",
        "--output",
        default="out.json",
        metavar="DEPLOYMENT.json",
        help="the deployment file to write (default out.json)",
    )
    up.add_argument("--force", action="store_true", help="overwrite a live deployment file")
    up.set_defaults(handler=cmd_up)

    invoke = commands.add_parser("invoke", help="invoke a function of a running deployment")
    invoke.add_argument("deployment", metavar="DEPLOYMENT.json")
    invoke.add_argument("name", metavar="NAME", help="function name")
    source = invoke.add_mutually_exclusive_group()
    source.add_argument("--event", help="the event as JSON")
    source.add_argument("--event-file", metavar="FILE", help="a file holding the event JSON")
    source.add_argument("--input", type=int, metavar="K", help="the deployment's input K")
    invoke.add_argument("-n", "--count", type=int, default=1, help="invocations (default 1)")
    invoke.add_argument("--concurrency", type=int, default=1, help="at once (default 1)")
    invoke.add_argument("--timeout", type=float, help="per-invocation timeout in s")
    invoke.add_argument(
        "--validate",
        action="store_true",
        help="check the output with the SeBS benchmark's validate_output",
    )
    invoke.set_defaults(handler=cmd_invoke)

    status = commands.add_parser("status", help="instances, health and memory of a deployment")
    status.add_argument("deployment", metavar="DEPLOYMENT.json")
    status.set_defaults(handler=cmd_status)

    stop = commands.add_parser("stop", help="stop a deployment and write memory statistics")
    stop.add_argument("deployment", metavar="DEPLOYMENT.json")
    stop.add_argument(
        "stats",
        nargs="?",
        default="memory_stats.json",
        metavar="memory_stats.json",
        help="SeBS-shaped statistics (default name)",
    )
    stop.set_defaults(handler=cmd_stop)
