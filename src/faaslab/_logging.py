"""structlog set-up: a library's by default, an entry point's when one asks.

Each module has ``log = structlog.get_logger()`` and binds its context, with
stable event names (``instance.ready``). Where those events go:

- **Embedded** (the default, :func:`use_stdlib_logging`, set when faaslab is
  imported and structlog is not configured yet): through structlog's stdlib
  integration to ``logging`` loggers named after the modules
  (``faaslab._deployment._actor``, under ``faaslab``). Nothing reaches
  stdout; with no handler configured, the stdlib's last resort shows WARNING
  and above on stderr, as for any library. The record's message is ``event
  key=value ...``; the whole event dict is ``record.faaslab_event``.
  :func:`enable_logging` (``faaslab.enable_logging()``) is the one-liner
  that shows them rendered by faaslab (JSON or console) on stderr; an
  application that configures structlog itself gets faaslab's events
  through its own configuration.
- **Entry points** (the CLI, the supervisor process, the host sampler) call
  :func:`configure_logging`, which renders every event as before.

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

__all__ = (
    "EVENT_ATTRIBUTE",
    "configure_logging",
    "enable_logging",
    "log_to_file",
    "stderr_console",
    "use_stdlib_logging",
)

#: The ``logging.LogRecord`` attribute holding a faaslab event's dict.
EVENT_ATTRIBUTE = "faaslab_event"

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


# -- embedded: the stdlib's logging -------------------------------------------------


def _to_stdlib(_: Any, __: str, event_dict: structlog.types.EventDict) -> dict[str, Any]:
    """The last processor: ``event key=value ...`` as the message, the dict beside it."""
    fields = " ".join(
        f"{key}={value}" for key, value in event_dict.items() if key not in ("event", "level")
    )
    message = f"{event_dict.get('event', '')} {fields}".rstrip()
    return {"msg": message, "extra": {EVENT_ATTRIBUTE: dict(event_dict)}}


def use_stdlib_logging() -> None:
    """Route structlog's events to ``logging`` (faaslab's default as a library).

    Loggers are not cached: an application that configures structlog or
    logging later, after faaslab logged, still gets every later event.
    """
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # first: a disabled level costs nothing more
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.format_exc_info,
            _to_stdlib,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _EventFormatter(logging.Formatter):
    """Renders faaslab's event dicts as the CLI does (a timestamp, the level, JSON or console)."""

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self._renderer: structlog.types.Processor = (
            structlog.processors.JSONRenderer()
            if fmt == "json"
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        self._stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = dict(
            getattr(record, EVENT_ATTRIBUTE, None) or {"event": record.getMessage()}
        )
        event.setdefault("level", record.levelname.lower())
        stamped = self._stamp(None, record.levelname.lower(), event)
        return str(self._renderer(None, record.levelname.lower(), stamped))


def enable_logging(fmt: str = "console", level: int | str = logging.INFO) -> logging.Handler:
    """Show faaslab's events on stderr, rendered as the CLI renders them; return the handler.

    ``faaslab.enable_logging()`` (console) or ``faaslab.enable_logging("json")``.
    Only the ``faaslab`` logger is touched (a handler and its level): the
    application's own logging stays as it is. Remove the handler to undo.
    """
    if fmt not in ("console", "json"):
        raise ValueError(f"fmt: {fmt!r}; faaslab renders 'console' or 'json'")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_EventFormatter(fmt))
    logger = logging.getLogger("faaslab")
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
