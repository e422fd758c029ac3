"""The tables SeBS's commands print: a run's invocations, a ``result.csv`` summary."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from pathlib import Path

from .._sebs import ExecutionResult
from ._progress import Column

__all__ = ("csv_summary_rows", "execution_rows")

Rows = tuple[list[Column], list[list[str]]]


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f}"


def execution_rows(results: Sequence[ExecutionResult]) -> Rows:
    """One row per invocation: cold, times (ms), the call's memory peak (MiB)."""
    columns = [
        Column("#", numeric=True),
        Column("cold"),
        Column("client ms", numeric=True),
        Column("benchmark ms", numeric=True),
        Column("connect ms", numeric=True),
        Column("first byte ms", numeric=True),
        Column("memory_used MiB", numeric=True),
        Column("status"),
    ]
    rows = []
    for index, result in enumerate(results, 1):
        times, stats = result.times, result.stats
        rows.append(
            [
                str(index),
                "yes" if stats.cold_start else "no",
                _ms(times.client),
                _ms(times.benchmark),
                _ms(times.http_startup * 1e6) if times.http_startup is not None else "-",
                _ms(times.http_first_byte_return * 1e6)
                if times.http_first_byte_return is not None
                else "-",
                f"{stats.memory_used:.1f}" if stats.memory_used is not None else "-",
                "failed" if stats.failure else "ok",
            ]
        )
    return columns, rows


def csv_summary_rows(path: Path) -> Rows:
    """Per memory size and type of a ``result.csv``: calls, cold ones, means."""
    groups: dict[tuple[int, str], list[dict[str, str]]] = {}
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            groups.setdefault((int(row["memory"]), row["type"]), []).append(row)

    def mean(rows: list[dict[str, str]], key: str) -> float | None:
        values = [float(row[key]) for row in rows if row[key] not in ("", "None")]
        return statistics.fmean(values) if values else None

    columns = [
        Column("memory", numeric=True),
        Column("type"),
        Column("calls", numeric=True),
        Column("cold", numeric=True),
        Column("exec ms", numeric=True),
        Column("client ms", numeric=True),
        Column("connect ms", numeric=True),
        Column("mem_used MiB", numeric=True),
    ]
    rows = []
    for (memory, run_type), members in sorted(groups.items()):
        connection = mean(members, "connection_time")
        memory_used = mean(members, "mem_used")
        rows.append(
            [
                str(memory),
                run_type,
                str(len(members)),
                str(sum(row["is_cold"] == "True" for row in members)),
                _ms(mean(members, "exec_time")),
                _ms(mean(members, "client_time")),
                _ms(connection * 1e6) if connection is not None else "-",
                f"{memory_used:.1f}" if memory_used is not None else "-",
            ]
        )
    return columns, rows
