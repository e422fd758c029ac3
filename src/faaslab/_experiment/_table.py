"""The summary as a plain-text table (what ``faaslab report`` prints)."""

from __future__ import annotations

from ._summary import ExperimentSummary, FunctionSummary, LatencyStats, PhaseSummary

__all__ = ("format_table", "table_columns", "table_notes", "table_rows")

_HEADER = (
    "deployment",
    "function",
    "MB",
    "phase",
    "calls",
    "errors",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "start ms",
    "calls/s",
    "call peak MB",
    "mem mean/max MB",
)
_NUMERIC = {"MB", "calls", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms", "start ms", "calls/s"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _mb(value: float | None) -> str:
    # MB = 1e6 bytes, as in SeBS's memory_stats.json.
    return "-" if value is None else f"{value / 1e6:.1f}"


def _latency_cells(latency: LatencyStats | None) -> list[str]:
    if latency is None:
        return ["-"] * 4
    return [_ms(latency.p50_s), _ms(latency.p95_s), _ms(latency.p99_s), _ms(latency.max_s)]


def _rows(function: FunctionSummary) -> list[list[str]]:
    phases: list[tuple[str, PhaseSummary]] = [
        (name, phase)
        for name, phase in (("cold", function.cold), ("warm", function.warm))
        if phase.calls
    ] or [("-", function.warm)]
    rows = []
    for i, (name, phase) in enumerate(phases):
        first = i == 0
        start = function.container_start.p50_s if function.container_start else None
        rows.append(
            [
                function.deployment if first else "",
                function.function if first else "",
                str(function.memory_mb or "-") if first else "",
                name,
                str(phase.calls),
                str(phase.errors),
                *_latency_cells(phase.latency),
                _ms(start) if name == "cold" else "",
                (
                    f"{function.throughput_per_s:.1f}"
                    if first and function.throughput_per_s is not None
                    else ("-" if first else "")
                ),
                _mb(function.call_peak_max_bytes) if first else "",
                (
                    f"{_mb(function.memory_mean_bytes)} / {_mb(function.memory_max_bytes)}"
                    if first
                    else ""
                ),
            ]
        )
    return rows


def table_columns() -> list[tuple[str, bool]]:
    """The summary table's headers, each with whether it is numeric (right-aligned)."""
    return [(header, header in _NUMERIC) for header in _HEADER]


def table_rows(summary: ExperimentSummary) -> list[list[str]]:
    """The summary table's rows: per function, one for cold calls and one for warm."""
    return [row for f in summary.functions for row in _rows(f)]
def _scaling_line(function: FunctionSummary) -> str:
    share = (
        f" ({function.cold_fraction * 100:.0f} % of successful calls)"
        if function.cold_fraction is not None
        else ""
    )
    idle = function.idle_memory_mb_s
    wait = function.cold_start_wait
    waited = f" waiting {_ms(wait.p50_s)} ms (p50)" if wait is not None else ""
    started = function.instances_started or 0
    return (
        f"  {function.deployment}/{function.function} ({function.policy}): "
        f"{_count(function.cold_starts, 'cold start')}{share}{waited}, "
        f"{_count(started, 'instance')} started, at most {function.max_instances_seen or 0} "
        "at once, idle memory " + ("-" if idle is None else f"{idle:.0f} MB·s")
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def format_table(summary: ExperimentSummary) -> str:
    """The summary table, then failures and drops, then one status line."""
    rows = [list(_HEADER), *table_rows(summary)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if header in _NUMERIC else cell.ljust(width)
            for cell, width, header in zip(row, widths, _HEADER, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines + table_notes(summary))


def table_notes(summary: ExperimentSummary) -> list[str]:
    """What follows the table: failures and drops, then one status line."""
    lines: list[str] = []
    notes = []
    for function in summary.functions:
        where = f"{function.deployment}/{function.function}"
        for error_type, count in sorted(function.error_types.items()):
            notes.append(f"  {where}: {count} x {error_type}")
        if function.dropped:
            notes.append(f"  {where}: {function.dropped} open-loop arrivals dropped (at the cap)")
    if notes:
        lines += ["", "failures:", *notes]
    scaling = [_scaling_line(f) for f in summary.functions if f.policy not in (None, "fixed")]
    if scaling:
        lines += ["", "scaling (cold start: the call waited for an instance to start):", *scaling]
    lines += [
        "",
        f"{summary.experiment}: {summary.status}, {summary.calls} calls, {summary.errors} errors"
        + (f", {summary.dropped} dropped" if summary.dropped else "")
        + "  (latency: client round trip of successful calls; start: container create to ready;"
        " memory: MB = 1e6 bytes, cgroup usage incl. page cache)",
    ]
    return lines
