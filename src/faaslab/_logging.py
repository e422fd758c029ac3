"""structlog set-up, shared by every entry point (the CLI, the supervisor process).

Library code never configures logging: each module has ``log =
structlog.get_logger()`` and binds its context; only an entry point calls
:func:`configure_logging`.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ("configure_logging",)


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
