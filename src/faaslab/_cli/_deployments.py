"""The deployment commands of the CLI: start, invoke, status, stop, up, ps, gc.

Each takes the parsed arguments and returns an exit code; errors are raised
as FaaslabError and turned into one line by ``_cli.main``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec

from .._backend import open_engine, owner_alive, wait_owner_gone
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
from .._deployment import InstanceStatistics, stop_orphaned
from .._errors import FaaslabError, SpecError, StateError
from .._sebs import is_sebs_benchmark
from .._spec import (
    FUNCTION_LANGUAGES,
    POLICIES,
    DeploymentSpec,
    FunctionSpec,
    ScalingSpec,
    SwarmSpec,
)
from .._state import DeploymentState, check_writable, load_state
from .._storage import parse_nosql_option, parse_storage_option
from ._progress import Column, print_table

__all__ = (
    "add_deployment_options",
    "cmd_invoke",
    "cmd_start",
    "cmd_status",
    "cmd_stop",
    "cmd_up",
    "register",
    "spec_from_args",
    "start_detached",
)

_encode_line = msgspec.json.Encoder().encode
#: How long `stop` waits for a live supervisor before treating it as dead.
STOP_REPLY_TIMEOUT_S = 120.0
#: How long `stop` waits, after the reply, for the supervisor to finish removing.
SUPERVISOR_EXIT_BOUND_S = 120.0


# -- options shared by start and up ------------------------------------------------


def add_deployment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "functions",
        nargs="+",
        metavar="FUNCTION_DIR",
        help="function directories (function.py or function.js with handler(event)), "
        "or SeBS benchmark directories",
    )
    parser.add_argument(
        "--language",
        default="python",
        metavar="LANGUAGE",
        help=f"the functions' language: {' or '.join(sorted(FUNCTION_LANGUAGES))} "
        "(SeBS's --language; default python)",
    )
    parser.add_argument(
        "--language-version",
        metavar="V",
        help="SeBS's --language-version: picks requirements.txt.<V> / package.json.<V> "
        "(default: the runtime's, 3.11 or 18)",
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
        metavar="MB",
        help="memory limit per instance (default: a SeBS benchmark's config.json, else 256)",
    )
    parser.add_argument("--cpus", type=float, default=1.0, help="CPUs per instance")
    parser.add_argument(
        "--tmp",
        type=int,
        default=512,
        metavar="MB",
        help="size of each instance's writable /tmp, Lambda's ephemeral storage (default "
        "512; a tmpfs: it counts against --memory)",
    )
    parser.add_argument(
        "--engine-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="how long to wait for a Docker engine that stops answering before the "
        "deployment ends (default 120)",
    )
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=None,
        metavar="N",
        help="refuse a function whose instance crashes more than N times a minute "
        "(default: never; deaths during an invocation never count)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="per-invocation timeout (default: a SeBS benchmark's config.json, else 60)",
    )
    parser.add_argument(
        "--remove-containers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="remove containers at stop (default: yes)",
    )
    parser.add_argument(
        "--image",
        help="runtime image (default: the language's, faaslab/python:3.11 or faaslab/nodejs:18)",
    )
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
        "--nosql",
        nargs="?",
        const="dynalite",
        default=None,
        metavar="KIND",
        help="NoSQL storage (the DynamoDB API): dynalite (the default when given alone), "
        "scylladb, none; without the option, started when a SeBS benchmark needs it",
    )
    parser.add_argument(
        "--keep-nosql", action="store_true", help="keep the NoSQL data volume at stop"
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
    scaling = parser.add_argument_group("scaling (per function)")
    scaling.add_argument(
        "--scaling",
        default="fixed",
        choices=POLICIES,
        help="fixed: --deployments instances always (default); keep-alive: on demand up to "
        "--max-instances, idle ones stopped after --keep-alive; hybrid-histogram: ATC'20's "
        "pre-warm and keep-alive windows from a histogram of idle times",
    )
    scaling.add_argument(
        "--keep-alive", type=float, metavar="S", help="seconds an idle instance is kept"
    )
    scaling.add_argument("--min-instances", type=int, metavar="N", help="kept even when idle")
    scaling.add_argument("--max-instances", type=int, metavar="N", help="instances at most")

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


_SCALING_OPTIONS = {
    "scaling.keep_alive_s": "--keep-alive",
    "scaling.min_instances": "--min-instances",
    "scaling.max_instances": "--max-instances",
}


def scaling_from_args(args: argparse.Namespace) -> ScalingSpec:
    """The ``--scaling`` options as a ScalingSpec; errors name the options."""
    if args.scaling != "fixed" and args.deployments != 1:
        raise SpecError(
            f"--deployments {args.deployments}: with --scaling {args.scaling}, instances come "
            "and go between --min-instances and --max-instances"
        )
    fields: dict[str, Any] = {"policy": args.scaling}
    for option, field in (
        ("keep_alive", "keep_alive_s"),
        ("min_instances", "min_instances"),
        ("max_instances", "max_instances"),
    ):
        if getattr(args, option) is not None:
            fields[field] = getattr(args, option)
    try:
        return ScalingSpec(**fields)
    except SpecError as exc:
        message = str(exc)
        for field, option in _SCALING_OPTIONS.items():
            message = message.replace(field, option)
        raise SpecError(message) from None


def _function_name(directory: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", directory.resolve().name).lstrip("_.-")
    return name[:63] or "function"


def spec_from_args(args: argparse.Namespace) -> DeploymentSpec:
    functions = []
    scaling = scaling_from_args(args)
    for directory in args.functions:
        path = Path(directory)
        memory, timeout = args.memory or 256, args.timeout or 60.0
        if is_sebs_benchmark(path, args.language):
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
                language=args.language,
                language_version=args.language_version,
                tmp_mb=args.tmp,
                scaling=scaling,
                placement=list(args.placement),
            )
        )
    return DeploymentSpec(
        storage=parse_storage_option(args.storage, keep=args.keep_storage),
        nosql=parse_nosql_option(args.nosql, keep=args.keep_nosql),
        sebs_size=args.size,
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
        functions=functions,
        measure_interval_ms=args.measure_interval,
        remove_containers=args.remove_containers,
        image=args.image,
        deployment_id=args.deployment_id,
        engine_timeout_s=args.engine_timeout,
        max_restarts=args.max_restarts,
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


def start_detached(spec: DeploymentSpec, path: Path, *, force: bool = False) -> DeploymentState:
    """Spawn the supervisor of ``spec`` with its deployment file at ``path``; its state once ready.

    Refuses a path that cannot be written, or that holds a live deployment
    (unless ``force``), before anything starts.
    """
    check_writable(path)
    _refuse_live(path, force)
    spawn_supervisor(spec, path, timeout=spec.start_timeout_s + 120)
    return load_state(path)


def cmd_start(args: argparse.Namespace) -> int:
    path = Path(args.output).absolute()
    check_writable(path)
    _refuse_live(path, args.force)
    spec = spec_from_args(args)
    started = time.monotonic()
    state = start_detached(spec, path, force=args.force)
    for record in state.functions:
        print(f"{record.instance:<24} {record.url:<22} {record.instance_id[:12]}")
    _print_pools(state)
    print(
        f"deployment {state.id}: {len(state.functions)} instance(s) ready in "
        f"{time.monotonic() - started:.1f} s; state in {path}",
        file=sys.stderr,
    )
    return 0


def _print_pools(state: DeploymentState) -> None:
    for pool in state.pools:
        if pool.policy != "fixed":
            print(
                f"{pool.function}: {pool.policy}, {pool.alive} of at most {pool.max_instances} "
                "instance(s) now; more start on demand",
                file=sys.stderr,
            )


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
    if state.status == "ended":
        raise FaaslabError(
            f"{path}: deployment {state.id} has ended ({state.ended_reason}); "
            f"`faaslab stop {path}` removes what it left"
        )
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


def _clock(at: float | None) -> str:
    return "-" if at is None else time.strftime("%H:%M:%S", time.localtime(at))


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _instance_state(inst: InstanceStatistics) -> str:
    """The state column: the state, and while backing off, the next retry."""
    if inst.state == "backoff" and inst.retry_at is not None:
        wait = max(0.0, inst.retry_at - time.time())
        return f"backoff (retry {_clock(inst.retry_at)}, in {wait:.0f} s)"
    return inst.state


def cmd_status(args: argparse.Namespace) -> int:
    path = Path(args.deployment)
    state = load_state(path)
    print(f"deployment {state.id}: {state.status}")
    if state.status in ("stopped", "ended"):
        print(f"  stopped at {time.ctime(state.stopped_at or 0)}; stats: {state.stats_path or '-'}")
        if state.ended_reason:
            print(f"  ended on its own: {state.ended_reason}; `faaslab stop {path}` cleans up")
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
    stats = reply.statistics
    print(f"  supervisor: running (pid {pid}); sampler: {reply.sampler_priority or 'off'}")
    if stats.engine_unreachable_since is not None:
        print(
            f"  engine: UNREACHABLE since {_utc(stats.engine_unreachable_since)}; waiting for it "
            f"until {_utc(stats.engine_wait_until or 0)}, then the deployment ends"
        )
    elif stats.engine_outages:
        print(f"  engine: answering ({stats.engine_outages} outage(s) ridden out)")
    memory = {m.instance: m for m in reply.memory}
    for function in stats.functions:
        if function.policy != "fixed":
            serving = sum(inst.state != "stopping" for inst in function.instances)
            print(
                f"  {function.name} ({function.policy}): {serving} instance(s) alive, at most "
                f"{function.max_alive} so far; {function.starts} started, {function.stops} "
                f"stopped, {function.cold_starts} cold starts, {function.queued} call(s) queued"
            )
    rows = []
    ends: list[str] = []
    for function in stats.functions:
        for inst in function.instances:
            m = memory.get(inst.name)
            rows.append(
                [
                    inst.name,
                    _instance_state(inst),
                    str(inst.restarts),
                    str(inst.calls),
                    str(m.samples) if m else "-",
                    str(m.precision_errors) if m else "-",
                    _mb(m.last_bytes) if m else "-",
                    _mb(m.max_bytes) if m else "-",
                    inst.url or "-",
                ]
            )
            if inst.last_exit:
                counts = ", ".join(f"{n} {cause}" for cause, n in sorted(inst.ends.items()))
                ends.append(f"  {inst.name}: last end {inst.last_exit} (ends: {counts})")
    columns = [
        Column("instance"),
        Column("state"),
        *(Column(h, numeric=True) for h in ("restarts", "calls", "samples", "late")),
        Column("memory", numeric=True),
        Column("max", numeric=True),
        Column("url"),
    ]
    print_table(columns, rows, indent="  ")
    for line in ends:
        print(line)
    for function in stats.functions:
        if function.failed:
            print(f"  function {function.name}: FAILED")
    return 0


# -- stop -----------------------------------------------------------------------------


@contextlib.contextmanager
def _stopping_alone(path: Path) -> Iterator[None]:
    """One `stop` of a deployment at a time: a second waits, then finds it stopped.

    The lock is the deployment's work directory (``<state>.d``), which the
    atomic rewrites of the state file leave alone.
    """
    workdir = path.with_name(f"{path.name}.d")
    workdir.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(workdir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def cmd_stop(args: argparse.Namespace) -> int:
    path = Path(args.deployment)
    load_state(path)  # a bad file is refused before anything waits
    stats_path = Path(args.stats).absolute()
    with _stopping_alone(path):
        state = load_state(path)  # again: another stop may have finished meanwhile
        if state.status == "stopped":
            print(f"deployment {state.id} is already stopped (nothing done)")
            return 0
        check_writable(stats_path)
        if state.status != "ended" and _supervisor_alive(state):
            reply = anyio.run(_stop_via_supervisor, state, stats_path)
            if reply is not None:
                # Its last acts (the storage, the network, a final sweep) follow the reply.
                _wait_exited(state)
                if not reply.by_this_request:
                    print(f"deployment {state.id} was stopped by another request (nothing done)")
                elif reply.stats_path:
                    print(f"memory statistics: {reply.stats_path} (typed: {reply.report_path})")
                else:
                    print("memory sampling was off: no statistics written")
                print(f"deployment {state.id} stopped")
                return 0
            print("the supervisor did not answer: cleaning up by label", file=sys.stderr)
            state = load_state(path)
            if state.status == "stopped":  # it finished after all
                print(f"deployment {state.id} stopped")
                return 0
        anyio.run(_stop_by_label, state, path, stats_path)
    ended = state.ended_reason
    state = load_state(path)
    if state.stats_path:
        print(f"memory statistics (incomplete, from the last checkpoint): {state.stats_path}")
    if ended:
        print(f"deployment {state.id} stopped (it had ended: {ended}); nothing of it is left")
    else:
        print(f"deployment {state.id} stopped (its supervisor was gone)")
    return 0


def _wait_exited(state: DeploymentState) -> None:
    """Wait (bounded) until the supervisor process has ended, so that nothing is left."""
    assert state.supervisor is not None
    if not wait_owner_gone(state.supervisor.owner, SUPERVISOR_EXIT_BOUND_S):
        print(
            f"the supervisor (pid {state.supervisor.pid}) is still removing the deployment's "
            "objects; `faaslab ps` shows what is left",
            file=sys.stderr,
        )


async def _stop_via_supervisor(state: DeploymentState, stats_path: Path) -> StopReply | None:
    assert state.supervisor is not None
    try:
        with anyio.fail_after(STOP_REPLY_TIMEOUT_S):
            async with connect(Path(state.supervisor.socket)) as client:
                reply = await client.request(StopRequest(stats_path=str(stats_path)))
    except (FaaslabError, TimeoutError):
        return None
    return reply if isinstance(reply, StopReply) else None


async def _stop_by_label(state: DeploymentState, path: Path, stats_path: Path) -> None:
    async with open_engine() as engine:
        await stop_orphaned(engine, state, path, stats_path)


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
            _print_pools(state)
            print("serving; Ctrl-C stops and writes the memory statistics", file=sys.stderr)
            sys.stdout.flush()
        else:
            print(f"faaslab: {message.error}", file=sys.stderr)

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
