"""The commands about the machine and the engine: engine, registry, images, doctor, ps, gc."""

from __future__ import annotations

import argparse
import sys

import anyio

from .._backend import (
    IMAGE_LABEL,
    engine_answers,
    open_engine,
    start_engine,
    start_registry,
    stop_engine,
    stop_registry,
)
from .._deployment import find_deployments, remove_deployment
from .._errors import SpecError
from .._logging import stderr_console
from ._doctor import run_checks
from ._images import build_images, describe, image_statuses
from ._progress import Column, StepProgress, open_progress, print_table

__all__ = ("register",)


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_engine(args: argparse.Namespace) -> int:
    if args.action == "up":
        status = start_engine()
        if status.started:
            print(f"engine: started dockerd (pid {status.pid}), answering at {status.endpoint}")
        else:
            print(f"engine: already answering at {status.endpoint}")
        return 0
    if args.action == "down":
        pid = stop_engine()
        print("engine: no engine started by faaslab" if pid is None else f"engine: stopped {pid}")
        return 0
    answers = engine_answers()
    print("engine: answering" if answers else "engine: not answering")
    return 0 if answers else 1


def cmd_registry(args: argparse.Namespace) -> int:
    if args.action == "up":
        status = start_registry(args.address)
        if status.started:
            print(f"registry: started docker-registry (pid {status.pid}) at {status.address}")
        else:
            print(f"registry: already answering at {status.address}")
        return 0
    pid = stop_registry(args.address)
    print("registry: none started by faaslab there" if pid is None else f"registry: stopped {pid}")
    return 0


# -- images ---------------------------------------------------------------------


def cmd_images(args: argparse.Namespace) -> int:
    async def build() -> int:
        async with open_engine() as engine:
            statuses = await image_statuses(engine, base=args.base)
            stale = sum(args.force or not s.current for s in statuses)
            console = stderr_console()
            with open_progress() as bars:
                # On a terminal one bar counts the build's steps; elsewhere the
                # lines go to stderr as they come (CI logs keep them).
                what = f"building {stale} image(s)"
                steps = StepProgress(bars, what) if console.is_terminal else None
                results = await build_images(
                    engine, base=args.base, force=args.force, progress=steps or progress
                )
                if steps is not None:
                    steps.finish()
        print_table(
            [Column("image"), Column("status")],
            [[status.name, "built" if rebuilt else "up to date"] for status, rebuilt in results],
        )
        return 0

    async def listing() -> int:
        async with open_engine() as engine:
            images = await engine.images_labeled(IMAGE_LABEL)
        for line in describe(images):
            print(line)
        if not images:
            print("no faaslab images: run `python -m faaslab images build`")
        return 0

    return anyio.run(build if args.action == "build" else listing)


# -- doctor ---------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    async def doctor() -> int:
        failed = 0
        async for check in run_checks(base=args.base):
            failed += not check.ok
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<34} {check.detail}", flush=True)
        return 1 if failed else 0

    return anyio.run(doctor)


# -- ps / gc ----------------------------------------------------------------------


def cmd_ps(args: argparse.Namespace) -> int:
    async def listing() -> int:
        async with open_engine() as engine:
            found = await find_deployments(engine)
        if not found:
            print("no faaslab deployments on the engine")
            return 0
        print_table(
            [
                Column("deployment"),
                Column("status"),
                Column("containers", numeric=True),
                Column("running", numeric=True),
                Column("networks", numeric=True),
                Column("volumes", numeric=True),
                Column("services", numeric=True),
                Column("state file"),
            ],
            [
                [
                    d.deployment_id,
                    "live" if d.owner_alive else "orphaned",
                    str(d.containers),
                    str(d.running),
                    str(d.networks),
                    str(d.volumes),
                    str(d.services),
                    d.state_file or "-",
                ]
                for d in found
            ],
        )
        return 0

    return anyio.run(listing)


def cmd_gc(args: argparse.Namespace) -> int:
    async def collect() -> int:
        async with open_engine() as engine:
            orphans = [
                d
                for d in await find_deployments(engine)
                if not d.owner_alive and (not args.ids or d.deployment_id in args.ids)
            ]
            if not orphans:
                print("nothing to collect: every deployment has a live owner")
                return 0
            for d in orphans:
                swarm = f", {d.services} service(s), {d.secrets} secret(s)" if d.services else ""
                print(
                    f"orphaned: {d.deployment_id} ({d.containers} container(s), "
                    f"{d.networks} network(s), {d.volumes} volume(s){swarm})"
                )
            if not args.yes:
                if not sys.stdin.isatty():
                    raise SpecError("gc: not on a terminal; pass --yes to remove them")
                answer = await anyio.to_thread.run_sync(input, "remove them? [y/N] ")
                answer = answer.strip().lower()
                if answer not in ("y", "yes"):
                    print("nothing removed")
                    return 0
            for d in orphans:
                removed = await remove_deployment(engine, d.deployment_id)
                print(f"removed {removed} object(s) of {d.deployment_id}")
        return 0

    return anyio.run(collect)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add engine, images, doctor, ps and gc to faaslab's command parser."""
    engine = commands.add_parser("engine", help="start or stop faaslab's own Docker engine")
    engine.add_argument("action", choices=("up", "down", "status"))
    engine.set_defaults(handler=cmd_engine)

    registry = commands.add_parser(
        "registry", help="start or stop faaslab's own image registry (swarms of several nodes)"
    )
    registry.add_argument("action", choices=("up", "down"))
    registry.add_argument(
        "--address", required=True, metavar="IP:PORT", help="where it listens (and nowhere else)"
    )
    registry.set_defaults(handler=cmd_registry)

    images = commands.add_parser("images", help="build or list faaslab's images (no registry)")
    images.add_argument("action", choices=("build", "list"))
    images.add_argument("--base", help="use this pullable Python image instead of mmdebstrap")
    images.add_argument("--force", action="store_true", help="rebuild even when up to date")
    images.set_defaults(handler=cmd_images)

    doctor = commands.add_parser("doctor", help="check the engine, cgroups and images")
    doctor.add_argument("--base", help="the --base image the runtime was built from, if any")
    doctor.set_defaults(handler=cmd_doctor)
    ps = commands.add_parser("ps", help="every faaslab deployment on the engine, live or orphaned")
    ps.set_defaults(handler=cmd_ps)

    gc = commands.add_parser("gc", help="remove what belongs to deployments whose owner is gone")
    gc.add_argument("--yes", action="store_true", help="do not ask")
    gc.add_argument(
        "ids",
        nargs="*",
        metavar="DEPLOYMENT_ID",
        help="only these deployments (default: every orphaned one)",
    )
    gc.set_defaults(handler=cmd_gc)
