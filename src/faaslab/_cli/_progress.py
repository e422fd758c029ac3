"""What the CLI shows people: progress bars and tables (rich), plain when piped.

- :func:`open_progress` — a rich progress display on the shared stderr
  console (``_logging.stderr_console``), so that log lines printed while it
  is live go above it instead of through it. Off a terminal it draws
  nothing.
- :class:`StepProgress` — image builds: each ``progress(line)`` of a build
  step advances one bar and says what it is doing.
- :class:`WorkloadProgress` — ``faaslab run``: one bar per workload run
  (calls of a bounded workload, seconds of a timed one).
- :class:`PreparationBars` — a deployment's preparation
  (``open_deployment(progress=...)``): packages pip collects, inputs uploaded.
- :func:`print_table` — aligned columns: a coloured rich table on a
  terminal, plain space-aligned text otherwise (what scripts parse).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, TextIO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .._experiment import Progress as WorkloadState
from .._logging import stderr_console

__all__ = (
    "Column",
    "PreparationBars",
    "StepProgress",
    "WorkloadProgress",
    "open_progress",
    "print_table",
)


@contextmanager
def open_progress(
    *, console: Console | None = None, byte_counts: bool = False, transient: bool = False
) -> Iterator[Progress]:
    """A live progress display: description, bar, done/total (or bytes), elapsed, ETA."""
    shown = console or stderr_console()
    columns: list[ProgressColumn] = [
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn() if byte_counts else MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    progress = Progress(
        *columns, console=shown, transient=transient, disable=not shown.is_terminal
    )
    with progress:
        yield progress


class StepProgress:
    """A build's progress lines as one bar of steps (``BuildProgress``-compatible).

    ``__call__(line)`` advances the bar and shows the line; a top-level line
    (no leading space) names a new image being built.
    """

    def __init__(self, progress: Progress, description: str, *, steps: int | None = None) -> None:
        self._progress = progress
        self._task = progress.add_task(description, total=steps)
        self._description = description
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if not line.startswith(" "):
            self._description = line
        text = line.strip()
        self._progress.update(
            self._task, advance=1, description=f"{self._description}: {text}"[:100]
        )

    def finish(self) -> None:
        task = self._progress.tasks[self._task]
        self._progress.update(self._task, total=task.completed, description=self._description)


class WorkloadProgress:
    """``faaslab run``: one bar per (deployment, workload, repetition)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[tuple[str, str, int], TaskID] = {}

    @staticmethod
    def describe(state: WorkloadState) -> str:
        text = f"{state.deployment} {state.workload}#{state.repetition}: {state.calls}"
        text += f"/{state.count} calls" if state.count is not None else " calls"
        text += f", {state.errors} errors" if state.errors else ""
        text += f", {state.dropped} dropped" if state.dropped else ""
        return text

    def update(self, state: WorkloadState) -> None:
        key = (state.deployment, state.workload, state.repetition)
        # A bounded workload counts calls; a timed one counts seconds.
        if state.count is not None:
            total, completed = float(state.count), float(state.calls)
        else:
            total = float(state.duration_s) if state.duration_s else 0.0
            completed = min(state.elapsed_s, total) if total else 0.0
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = self._progress.add_task(
                self.describe(state), total=total or None
            )
        self._progress.update(
            task, completed=completed, description=self.describe(state), total=total or None
        )

    def finish(self) -> None:
        for task in self._tasks.values():
            current = self._progress.tasks[task]
            if current.total is not None:
                self._progress.update(task, completed=current.total)


class PreparationBars:
    """Bars for a deployment's preparation: pip's packages, SeBS inputs uploaded.

    Satisfies ``_deployment.PreparationProgress``; ``uploaded`` is called
    from input.py's worker thread (rich's progress takes updates from any thread).
    """

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._pip: dict[str, TaskID] = {}
        self._collected: dict[str, int] = {}
        self._uploads: dict[str, TaskID] = {}

    def pip(self, function: str, line: str) -> None:
        text = line.strip().removeprefix("pip:").strip()
        task = self._pip.get(function)
        if task is None:
            task = self._pip[function] = self._progress.add_task(
                f"{function}: pip install", total=None
            )
            self._collected[function] = 0
        if text.startswith("Collecting"):
            self._collected[function] += 1
        collected = self._collected[function]
        done = text.startswith("Successfully installed")
        self._progress.update(
            task,
            completed=collected,
            total=collected if done else None,
            description=f"{function}: pip: {text}"[:80],
        )

    def uploaded(self, function: str, files: int, size: int) -> None:
        task = self._uploads.get(function)
        if task is None:
            task = self._uploads[function] = self._progress.add_task(
                f"{function}: inputs", total=None
            )
        self._progress.update(
            task,
            completed=files,
            description=f"{function}: inputs uploaded ({size / 1e6:.1f} MB)",
        )

    def finish(self) -> None:
        for task in (*self._pip.values(), *self._uploads.values()):
            current = self._progress.tasks[task]
            self._progress.update(task, total=current.completed)


Justify = Literal["left", "right"]


class Column:
    """A table column: its header, and whether its cells are numbers (right-aligned)."""

    def __init__(self, header: str, *, numeric: bool = False, style: str | None = None) -> None:
        self.header = header
        self.justify: Justify = "right" if numeric else "left"
        self.style = style


def _plain(columns: Sequence[Column], rows: Sequence[Sequence[str]], indent: str) -> str:
    table = [[c.header for c in columns], *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(width) if column.justify == "right" else cell.ljust(width)
            for cell, width, column in zip(row, widths, columns, strict=True)
        ]
        lines.append(indent + "  ".join(cells).rstrip())
    return "\n".join(lines)


def print_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    file: TextIO | None = None,
    indent: str = "",
) -> None:
    """Print aligned columns: rich (bold headers, colours) on a terminal, plain text otherwise."""
    stream = file or sys.stdout
    if not stream.isatty():
        if title:
            stream.write(f"{indent}{title}\n")
        stream.write(_plain(columns, rows, indent) + "\n")
        stream.flush()
        return
    table = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold cyan", title_justify="left")
    for column in columns:
        table.add_column(column.header, justify=column.justify, style=column.style)
    for row in rows:
        table.add_row(*row)
    Console(file=stream).print(table)
