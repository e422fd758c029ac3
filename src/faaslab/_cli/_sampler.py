"""`faaslab sampler status|stop|serve`: the host's one sampling process."""

from __future__ import annotations

import argparse
import json

import anyio

from .._sampling import (
    SamplerStatus,
    default_address,
    parse_address,
    sampler_status,
    serve_host_sampler,
    stop_host_sampler,
)

__all__ = ("describe_status", "register", "status_json")


def status_json(status: SamplerStatus | None) -> dict[str, object]:
    """The `--json` form: pid, priority, deployments, files, files per attached
    deployment (pid null: not running)."""
    if status is None:
        return {"pid": None, "priority": None, "deployments": 0, "files": 0, "attached": {}}
    return {
        "pid": status.pid,
        "priority": status.priority,
        "deployments": status.deployments,
        "files": status.files,
        "attached": dict(status.attached),
    }


def describe_status(status: SamplerStatus | None, address: str) -> str:
    if status is None:
        return f"not running at {address} (started on first use)"
    grids = ", ".join(f"{ns / 1e6:g} ms" for ns in status.intervals_ns) or "none"
    return (
        f"pid {status.pid} ({status.priority}), {status.deployments} deployment(s), "
        f"{status.files} file(s), grids: {grids}, up {status.uptime_s:.0f} s, "
        f"at {', '.join(status.listening)}"
    )


def cmd_status(args: argparse.Namespace) -> int:
    address = parse_address(args.address) if args.address else default_address()
    status = anyio.run(lambda: sampler_status(address))
    if args.json:
        print(json.dumps(status_json(status)))
    else:
        print(f"sampler: {describe_status(status, str(address))}")
    return 0 if status is not None else 1


def cmd_stop(args: argparse.Namespace) -> int:
    address = parse_address(args.address) if args.address else default_address()
    status = anyio.run(lambda: stop_host_sampler(address, force=args.force))
    if status is None:
        print(f"sampler: none running at {address}")
    else:
        print(f"sampler: stopped pid {status.pid}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    argv = ["--idle-exit", str(args.idle_exit)]
    if args.socket:
        argv += ["--socket", args.socket]
    if args.tcp:
        argv += ["--tcp", args.tcp]
    if args.engine:
        argv += ["--engine", args.engine]
    return serve_host_sampler(argv)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sampler` (status, stop, serve) to faaslab's command parser."""
    sampler = commands.add_parser(
        "sampler", help="the host's one sampling process, shared by every deployment"
    )
    actions = sampler.add_subparsers(dest="action", required=True, metavar="ACTION")
    address_help = (
        "unix:///path or tcp://host:port (default: FAASLAB_SAMPLER_ADDRESS or the state dir)"
    )

    status = actions.add_parser("status", help="pid, priority, deployments and files served")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.add_argument("--address", help=address_help)
    status.set_defaults(handler=cmd_status)

    stop = actions.add_parser("stop", help="stop it (it is started again on next use)")
    stop.add_argument("--force", action="store_true", help="even while deployments use it")
    stop.add_argument("--address", help=address_help)
    stop.set_defaults(handler=cmd_stop)

    serve = actions.add_parser(
        "serve", help="run it in the foreground (as a Swarm global service, say)"
    )
    serve.add_argument("--socket", help="unix socket path (default: in faaslab's state dir)")
    serve.add_argument(
        "--tcp", metavar="HOST:PORT", help="also listen on TCP; every client needs its token"
    )
    serve.add_argument(
        "--idle-exit", type=float, default=0.0, help="exit after this long unused (s; 0 = never)"
    )
    serve.add_argument("--engine", help="the engine TCP clients' containers are checked against")
    serve.set_defaults(handler=cmd_serve)
