"""The ``run`` and ``report`` commands: experiments from the shell.

    faaslab run EXPERIMENT.toml -o RESULTS_DIR [--overwrite]
    faaslab report RESULTS_DIR

``run`` shows a progress bar per workload on a terminal (stderr, nothing otherwise),
prints the summary table at the end and exits 1 when any call or deployment
failed. Ctrl-C stops cleanly: the records so far and a summary of them stay.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import anyio

from .._experiment import (
    ExperimentResult,
    ExperimentSummary,
    load_experiment_spec,
    read_run_info,
    run_experiment,
    summarize_results,
    table_columns,
    table_notes,
    table_rows,
)
from ._progress import Column, PreparationBars, WorkloadProgress, open_progress, print_table

__all__ = ("cmd_report", "cmd_run", "print_summary", "register")

def print_summary(summary: ExperimentSummary) -> None:
    """The summary table (coloured on a terminal, plain when piped), then its notes."""
    columns = [Column(header, numeric=numeric) for header, numeric in table_columns()]
    print_table(columns, table_rows(summary))
    print("\n".join(table_notes(summary)))


def cmd_run(args: argparse.Namespace) -> int:
    spec = load_experiment_spec(args.spec)
    with open_progress() as bars:
        workloads = WorkloadProgress(bars)
        run = partial(
            run_experiment,
            spec,
            args.output,
            overwrite=args.overwrite,
            progress=workloads.update if bars.console.is_terminal else None,
            source=args.spec,
            preparation=PreparationBars(bars),
        )
        try:
            result: ExperimentResult = anyio.run(run)
        except KeyboardInterrupt:
            print(
                f"faaslab: interrupted: the records so far and their summary are in "
                f"{args.output} (`faaslab report {args.output}`)",
                file=sys.stderr,
            )
            return 130
        workloads.finish()
    print_summary(result.summary)
    for name, error in result.failed_deployments.items():
        print(f"deployment {name} failed: {error}", file=sys.stderr)
    print(f"\nresults in {args.output}; tables and plots: faaslab report {args.output}")
    return 0 if result.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from .._experiment import PLOT_HINT, write_plots

    results = Path(args.results)
    run = read_run_info(results)
    print_summary(summarize_results(results))
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
