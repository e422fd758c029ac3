"""`python -m faaslab` / `faaslab`: the parser, dispatch, logging set-up, exit codes.

Each command group registers its commands (``register(commands)``) from its
own module: ``_deployments`` (start, up, invoke, status, stop), ``_system``
(engine, images, doctor, ps, gc), ``_sampler`` (sampler status, stop,
serve), ``_experiments`` (run, report), ``_sebs`` (SeBS's local, benchmark
and experiment groups), ``_demo``.
Exit codes: 0 ok, 1 a failure, 2 bad usage or input. A
:class:`FaaslabError` becomes one line on stderr; ``--debug`` shows the
traceback too.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence

from .._errors import FaaslabError
from .._logging import configure_logging
from . import _demo, _deployments, _experiments, _sampler, _sebs, _system

__all__ = ("main",)

Handler = Callable[[argparse.Namespace], int]

#: The command groups, in the order `faaslab --help` lists them.
GROUPS = (_system, _sampler, _deployments, _experiments, _sebs, _demo)


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
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # SIGTERM stops a command as Ctrl-C does: the event loop cancels its main
    # task, so every open deployment tears down and what was recorded is kept.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    # Commands that print their own progress or tables keep the lifecycle log
    # quiet on a terminal, so the two do not interleave.
    quiet = args.command in ("run", "demo", "benchmark", "experiment") and sys.stderr.isatty()
    # SeBS's --verbose asks for its debug log (tracebacks stay --debug's).
    verbose = bool(getattr(args, "verbose", False))
    configure_logging(args.log_format, args.debug or verbose, quiet=quiet)
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
