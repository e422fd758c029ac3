"""`python -m faaslab` / `faaslab`: argument parsing, logging set-up, exit codes.

This is the only place that configures structlog. Exit codes: 0 ok, 1 a
failure, 2 bad usage or input. A :class:`FaaslabError` becomes one line on
stderr; ``--debug`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence

import anyio
import structlog

from ._errors import FaaslabError

__all__ = ("main",)

Handler = Callable[[argparse.Namespace], int]


def configure_logging(fmt: str, debug: bool, *, quiet: bool = False) -> None:
    """Configure structlog; ``quiet`` keeps only warnings (for commands that draw
    their own progress or tables on the terminal)."""
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- engine ---------------------------------------------------------------------


def _cmd_engine(args: argparse.Namespace) -> int:
    from ._daemon import engine_answers, start_engine, stop_engine

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


# -- images ---------------------------------------------------------------------


def _cmd_images(args: argparse.Namespace) -> int:
    from ._engine import open_engine
    from ._images import IMAGE_LABEL, build_images, describe

    async def build() -> int:
        async with open_engine() as engine:
            results = await build_images(
                engine, base=args.base, force=args.force, progress=_progress
            )
        for status, rebuilt in results:
            print(f"{status.name:<32} {'built' if rebuilt else 'up to date'}")
        return 0

    async def listing() -> int:
        async with open_engine() as engine:
            images = await engine.client.images.list(filters={"label": [IMAGE_LABEL]})
        for line in describe(images):
            print(line)
        if not images:
            print("no faaslab images: run `python -m faaslab images build`")
        return 0

    return anyio.run(build if args.action == "build" else listing)


# -- doctor ---------------------------------------------------------------------


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ._doctor import run_checks

    async def doctor() -> int:
        failed = 0
        async for check in run_checks(base=args.base):
            failed += not check.ok
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<34} {check.detail}", flush=True)
        return 1 if failed else 0

    return anyio.run(doctor)


def _demo_main(output: str) -> int:
    from ._demo import demo_main

    return demo_main(output)


# -- parser ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faaslab",
        description="Run serverless functions locally in Docker and measure them.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default="auto",
        help="log format (auto: console on a terminal, JSON lines otherwise)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    engine = commands.add_parser("engine", help="start or stop faaslab's own Docker engine")
    engine.add_argument("action", choices=("up", "down", "status"))
    engine.set_defaults(handler=_cmd_engine)

    images = commands.add_parser("images", help="build or list faaslab's images (no registry)")
    images.add_argument("action", choices=("build", "list"))
    images.add_argument("--base", help="use this pullable Python image instead of mmdebstrap")
    images.add_argument("--force", action="store_true", help="rebuild even when up to date")
    images.set_defaults(handler=_cmd_images)

    from . import _commands as c

    start = commands.add_parser("start", help="start a detached deployment (SeBS's `local start`)")
    c.add_deployment_options(start)
    start.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DEPLOYMENT.json",
        help="the deployment file to write",
    )
    start.add_argument("--force", action="store_true", help="overwrite a live deployment file")
    start.set_defaults(handler=c.cmd_start)

    up = commands.add_parser("up", help="run a deployment in the foreground until Ctrl-C")
    c.add_deployment_options(up)
    up.add_argument(
        "-o",
        "--output",
        default="out.json",
        metavar="DEPLOYMENT.json",
        help="the deployment file to write (default out.json)",
    )
    up.add_argument("--force", action="store_true", help="overwrite a live deployment file")
    up.set_defaults(handler=c.cmd_up)

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
    invoke.set_defaults(handler=c.cmd_invoke)

    status = commands.add_parser("status", help="instances, health and memory of a deployment")
    status.add_argument("deployment", metavar="DEPLOYMENT.json")
    status.set_defaults(handler=c.cmd_status)

    stop = commands.add_parser("stop", help="stop a deployment and write memory statistics")
    stop.add_argument("deployment", metavar="DEPLOYMENT.json")
    stop.add_argument(
        "stats",
        nargs="?",
        default="memory_stats.json",
        metavar="memory_stats.json",
        help="SeBS-shaped statistics (default name)",
    )
    stop.set_defaults(handler=c.cmd_stop)

    ps = commands.add_parser("ps", help="every faaslab deployment on the engine, live or orphaned")
    ps.set_defaults(handler=c.cmd_ps)

    gc = commands.add_parser("gc", help="remove what belongs to deployments whose owner is gone")
    gc.add_argument("--yes", action="store_true", help="do not ask")
    gc.add_argument(
        "ids",
        nargs="*",
        metavar="DEPLOYMENT_ID",
        help="only these deployments (default: every orphaned one)",
    )
    gc.set_defaults(handler=c.cmd_gc)

    from ._experiment_cli import add_experiment_commands

    add_experiment_commands(commands)

    demo = commands.add_parser("demo", help="doctor, a real deployment, invocations, memory stats")
    demo.add_argument(
        "-o",
        "--output",
        default="demo-results",
        metavar="DIR",
        help="where the deployment file and statistics go (default demo-results)",
    )
    demo.set_defaults(handler=lambda args: _demo_main(args.output))

    doctor = commands.add_parser("doctor", help="check the engine, cgroups and images")
    doctor.add_argument("--base", help="the --base image the runtime was built from, if any")
    doctor.set_defaults(handler=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # SIGTERM stops a command as Ctrl-C does: the event loop cancels its main
    # task, so every open deployment tears down and what was recorded is kept.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    # Commands that print their own progress or tables keep the lifecycle log
    # quiet on a terminal, so the two do not interleave.
    quiet = args.command in ("run", "demo") and sys.stderr.isatty()
    configure_logging(args.log_format, args.debug, quiet=quiet)
    handler: Handler = args.handler
    try:
        return handler(args)
    except FaaslabError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"faaslab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("faaslab: interrupted", file=sys.stderr)
        return 130
