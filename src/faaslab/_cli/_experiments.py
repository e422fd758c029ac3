"""The ``run`` and ``report`` commands: experiments from the shell.

    faaslab run EXPERIMENT.toml -o RESULTS_DIR [--overwrite]
    faaslab report RESULTS_DIR

``run`` shows one progress line on a terminal (stderr, nothing otherwise),
prints the summary table at the end and exits 1 when any call or deployment
failed. Ctrl-C stops cleanly: the records so far and a summary of them stay.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import TextIO

import anyio

from .._experiment import (
    ExperimentResult,
    Progress,
    format_table,
    load_experiment_spec,
    read_run_info,
    run_experiment,
    summarize_results,
)

__all__ = ("ProgressLine", "cmd_report", "cmd_run", "register")

#: Redraws of the progress line per second, at most.
REDRAW_HZ = 10
_CLEAR = "\r\x1b[K"


class ProgressLine:
    """One self-overwriting status line on a terminal, throttled."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._latest: dict[str, Progress] = {}
        self._drawn_at = 0.0

    def update(self, progress: Progress) -> None:
        self._latest[progress.deployment] = progress
        now = time.monotonic()
        if now - self._drawn_at >= 1 / REDRAW_HZ:
            self._drawn_at = now
            self._stream.write(_CLEAR + self.render())
            self._stream.flush()

    def render(self) -> str:
        parts = []
        for p in self._latest.values():
            bound = f"/{p.count}" if p.count is not None else ""
            elapsed = f"{p.elapsed_s:.0f}" + (f"/{p.duration_s:g}" if p.duration_s else "") + " s"
            text = f"{p.deployment} {p.workload}#{p.repetition}: {p.calls}{bound} calls"
            text += f", {p.errors} errors" if p.errors else ""
            text += f", {p.dropped} dropped" if p.dropped else ""
            parts.append(f"{text}, {elapsed}")
        return " | ".join(parts)

    def close(self) -> None:
        if self._drawn_at:
            self._stream.write(_CLEAR)
            self._stream.flush()


def cmd_run(args: argparse.Namespace) -> int:
    spec = load_experiment_spec(args.spec)
    line = ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    run = partial(
        run_experiment,
        spec,
        args.output,
        overwrite=args.overwrite,
        progress=line.update if line is not None else None,
        source=args.spec,
    )
    try:
        result: ExperimentResult = anyio.run(run)
    except KeyboardInterrupt:
        if line is not None:
            line.close()
        print(
            f"faaslab: interrupted: the records so far and their summary are in {args.output} "
            f"(`faaslab report {args.output}`)",
            file=sys.stderr,
        )
        return 130
    if line is not None:
        line.close()
    print(format_table(result.summary))
    for name, error in result.failed_deployments.items():
        print(f"deployment {name} failed: {error}", file=sys.stderr)
    print(f"\nresults in {args.output}; tables and plots: faaslab report {args.output}")
    return 0 if result.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from .._experiment import PLOT_HINT, write_plots

    results = Path(args.results)
    run = read_run_info(results)
    print(format_table(summarize_results(results)))
    for deployment in run.deployments:
        if deployment.error:
            print(f"deployment {deployment.name} failed: {deployment.error}")
    try:
        paths = write_plots(results)
    except ImportError:
        print(f"\nplots need matplotlib, the `plot` extra: {PLOT_HINT}")
        return 0
    print()
    for path in paths:
        print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``run`` and ``report`` on faaslab's command parser."""
    run = subparsers.add_parser(
        "run",
        help="run an experiment and record every invocation",
        description="Run the deployments and workloads of EXPERIMENT.toml (or .json); write "
        "records, memory statistics, a summary and the spec it ran to RESULTS_DIR.",
    )
    run.add_argument("spec", metavar="EXPERIMENT.toml", help="the experiment (TOML or JSON)")
    run.add_argument(
        "-o", "--output", required=True, metavar="RESULTS_DIR", help="a new or empty directory"
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run's results in RESULTS_DIR (other files are kept)",
    )
    run.set_defaults(handler=cmd_run)

    report = subparsers.add_parser(
        "report",
        help="print an experiment's summary table and write its plots",
        description="Print the summary table of RESULTS_DIR and write PNG plots to "
        "RESULTS_DIR/plots (latency CDFs; memory over time per instance). Plots need the "
        "`plot` extra (matplotlib).",
    )
    report.add_argument("results", metavar="RESULTS_DIR")
    report.set_defaults(handler=cmd_report)
