"""structlog set-up, shared by every entry point (the CLI, the supervisor process).

Library code never configures logging: each module has ``log =
structlog.get_logger()`` and binds its context; only an entry point calls
:func:`configure_logging`.

Log lines and progress displays share one rich console on stderr
(:func:`stderr_console`): on a terminal a line is printed through it, so
rich puts it above a live progress bar instead of through it; anywhere else
(a pipe, a file, the supervisor's log) lines are written as they are.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.text import Text

__all__ = ("configure_logging", "log_to_file", "stderr_console")

_console: Console | None = None
#: A file every log line also goes to (SeBS's ``--output-dir/--output-file``).
_tee: TextIO | None = None


def stderr_console() -> Console:
    """The one console on stderr that log lines and progress displays share.

    It writes to whatever ``sys.stderr`` is at the time of writing.
    """
    global _console
    if _console is None:
        _console = Console(stderr=True)
    return _console


class _ConsoleLogger:
    """structlog's logger: one rendered line to stderr, through rich on a terminal."""

    def msg(self, message: str) -> None:
        if _tee is not None:
            _tee.write(Text.from_ansi(message).plain + "\n")
        console = stderr_console()
        if console.is_terminal:
            # Text.from_ansi keeps the console renderer's colours; soft_wrap
            # keeps a long line one line, as printed without rich.
            console.print(Text.from_ansi(message), soft_wrap=True, highlight=False)
        else:
            stream = sys.stderr
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def log_to_file(path: Path | None) -> None:
    """Also append every log line to ``path`` (colours stripped); None stops it."""
    global _tee
    if _tee is not None:
        _tee.close()
        _tee = None
    if path is not None:
        _tee = path.open("a", buffering=1)


def _logger_factory(*_: Any) -> _ConsoleLogger:
    return _ConsoleLogger()


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
        logger_factory=_logger_factory,
        cache_logger_on_first_use=True,
    )
