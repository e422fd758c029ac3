"""What people see: tables (rich on a terminal, plain when piped), bars, log lines.

A terminal is a rich console forced to be one, writing to a string.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
import structlog
from rich.console import Console

from faaslab import _logging
from faaslab._cli._progress import (
    Column,
    PreparationBars,
    StepProgress,
    open_progress,
    print_table,
)
from faaslab._logging import configure_logging

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLUMNS = [Column("name"), Column("calls", numeric=True)]
ROWS = [["alpha", "7"], ["b", "1234"]]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_piped_table_is_plain_aligned_text() -> None:
    out = io.StringIO()
    print_table(COLUMNS, ROWS, file=out, indent="  ")
    assert out.getvalue().splitlines() == [
        "  name   calls",
        "  alpha      7",
        "  b       1234",
    ]


def test_a_terminal_table_is_rich_and_coloured() -> None:
    out = Tty()
    print_table(COLUMNS, ROWS, file=out)
    text = out.getvalue()
    assert "\x1b[" in text  # styled headers
    plain = ANSI.sub("", text)
    assert re.search(r"alpha\s+7", plain)
    assert re.search(r"b\s+1234", plain)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The shared stderr console, made a terminal writing to a string."""
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    monkeypatch.setattr(_logging, "_console", console)
    monkeypatch.setattr("sys.stderr", Tty())  # the renderer picks colours by isatty
    yield console
    structlog.reset_defaults()


def test_log_lines_go_above_a_live_bar_whole(terminal: Console) -> None:
    configure_logging("console", debug=False)
    log = structlog.get_logger()
    with open_progress() as bars:
        task = bars.add_task("calls", total=10)
        bars.update(task, completed=3)
        bars.refresh()
        log.warning("sampler.lagging", instance="fn-0", late=5)
        bars.update(task, completed=10)
    lines = ANSI.sub("", terminal.file.getvalue()).replace("\r", "\n").splitlines()  # type: ignore[attr-defined]
    logged = [line for line in lines if "sampler.lagging" in line]
    assert logged, lines
    # The whole event on one line of its own, never mixed with the bar's text.
    assert all("instance=fn-0" in line and "late=5" in line for line in logged)
    assert not any("calls" in line for line in logged)


def test_build_steps_and_preparation_bars_count() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with open_progress(console=console) as bars:
        steps = StepProgress(bars, "building 1 image(s)")
        for line in ("building faaslab/python:3.11", "  Step 1/2 : FROM x", "  Step 2/2 : LABEL"):
            steps(line)
        steps.finish()
        assert (bars.tasks[0].completed, bars.tasks[0].total) == (3, 3)
        preparation = PreparationBars(bars)
        for line in ("  pip: Collecting jinja2", "  pip: Collecting markupsafe"):
            preparation.pip("fn", line)
        preparation.pip("fn", "  pip: Successfully installed jinja2 markupsafe")
        preparation.uploaded("fn", 2, 3_000_000)
        pip, uploads = bars.tasks[1], bars.tasks[2]
        assert (pip.completed, pip.total) == (2, 2)
        assert uploads.completed == 2
        assert "3.0 MB" in uploads.description
