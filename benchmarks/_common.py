"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import statistics
import tempfile
import textwrap
from pathlib import Path


def function_dir(source: str, name: str = "bench", entry: str = "function.py") -> Path:
    """A throw-away function directory with world-readable code (``entry`` holds the handler)."""
    root = Path(tempfile.mkdtemp(prefix="faaslab-bench-"))
    root.chmod(0o755)
    directory = root / name
    directory.mkdir(mode=0o755)
    (directory / entry).write_text(textwrap.dedent(source))
    (directory / entry).chmod(0o644)
    return directory


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)


def quiet_logs() -> None:
    """Only warnings from faaslab while a benchmark prints its table.

    Also makes SIGTERM stop a benchmark as Ctrl-C does (the event loop cancels
    its main task), so a killed benchmark still removes its containers.
    """
    import logging
    import os
    import signal

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
