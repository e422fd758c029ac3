"""Replaying an Azure Functions 2019 trace: invocations per minute into arrival times.

The trace of Shahrad et al., "Serverless in the Wild" (USENIX ATC'20), gives
per function the invocations in each minute of a day: a CSV with the header
``HashOwner,HashApp,HashFunction,Trigger,1,2,...,1440``, one row per function.
A workload maps some of its ``HashFunction`` values to the deployment's
functions (``trace_functions``); every traced invocation of those is made,
spread uniformly at random over its minute (seeded), minute ``m`` (from 0)
covering ``[m * minute_s, (m + 1) * minute_s)`` seconds of the replay.

Memory. Rows are functions and columns are minutes, so the file has to be
read row-wise while the replay goes minute-wise across functions. The file
is streamed once: an unmapped row is looked at only as far as its
``HashFunction`` field and its field count, and dropped; a mapped row's
counts are kept (one int per minute). So :func:`load_trace` holds the mapped
functions' counts, never the file, and :func:`trace_arrivals` holds one
minute's calls at a time: memory grows with the mapped functions and the
busiest minute, not with the file (a day of the real trace is ~50,000 rows).

Reading is synchronous file I/O (a trace of a day is tens of MB): an async
caller runs :func:`load_trace` in a worker thread. Records are one per line,
as in the published trace; quoted fields are understood, quoted line breaks
are not.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import msgspec

from .._errors import SpecError

__all__ = (
    "TRACE_COLUMNS",
    "Trace",
    "TraceCall",
    "TraceSummary",
    "TracedFunction",
    "load_trace",
    "trace_arrivals",
    "trace_summary",
)

#: The columns before the minutes.
TRACE_COLUMNS: Final = ("HashOwner", "HashApp", "HashFunction", "Trigger")
_FUNCTION_COLUMN: Final = TRACE_COLUMNS.index("HashFunction")
_TRIGGER_COLUMN: Final = TRACE_COLUMNS.index("Trigger")


class TracedFunction(msgspec.Struct, frozen=True, kw_only=True):
    """One mapped row of the trace."""

    #: Its ``HashFunction`` in the trace.
    trace_function: str
    #: The deployment's function its invocations go to.
    function: str
    trigger: str
    #: Its line in the file (the header is line 1).
    line: int
    #: Invocations in each minute.
    counts: tuple[int, ...]


class Trace(msgspec.Struct, frozen=True, kw_only=True):
    """The mapped rows of a trace file, in ``trace_functions`` order."""

    path: str
    minutes: int
    functions: tuple[TracedFunction, ...]


class TraceCall(msgspec.Struct, frozen=True):
    """One invocation to make: when (seconds since the replay's start) and of what."""

    at_s: float
    function: str
    trace_function: str


class TraceSummary(msgspec.Struct, frozen=True, kw_only=True):
    minutes: int
    calls: int
    #: Calls per deployment function (several trace functions may map to one).
    functions: dict[str, int]
    #: Calls per ``HashFunction``.
    trace_functions: dict[str, int]
    #: The minute (from 0) with the most calls over all mapped functions, and its calls.
    busiest_minute: int
    busiest_minute_calls: int


def _where(path: Path, line: int) -> str:
    return f"trace {path}, line {line}"


def _check_header(path: Path, header: list[str]) -> int:
    """The number of minute columns, after checking every column's name."""
    names = [name.strip() for name in header]
    for index, expected in enumerate(TRACE_COLUMNS):
        got = names[index] if index < len(names) else None
        if got != expected:
            found = "missing" if got is None else repr(got)
            raise SpecError(
                f"{_where(path, 1)}: column {index + 1} is {found}, expected {expected!r} "
                f"(an Azure Functions 2019 trace starts {','.join(TRACE_COLUMNS)},1,2,...)"
            )
    minutes = names[len(TRACE_COLUMNS) :]
    if not minutes:
        raise SpecError(f"{_where(path, 1)}: no minute columns after Trigger (expected 1,2,...)")
    for minute, name in enumerate(minutes, start=1):
        if name != str(minute):
            raise SpecError(
                f"{_where(path, 1)}: column {len(TRACE_COLUMNS) + minute} is {name!r}, "
                f"expected '{minute}' (minute columns are 1, 2, ... in order)"
            )
    return len(minutes)


def _split(line: str) -> list[str]:
    record = line.rstrip("\r\n")
    if '"' in record:
        return next(csv.reader([record]))
    return record.split(",")


def _function_field(line: str) -> tuple[str, int]:
    """The row's ``HashFunction`` and its number of fields, without splitting it all.

    Without quotes a CSV field is the text between commas, so finding two
    commas and counting the rest is exact, and far cheaper on a 1,440-column
    row that is then dropped.
    """
    if '"' in line:
        record = _split(line)
        return (record[_FUNCTION_COLUMN] if len(record) > _FUNCTION_COLUMN else ""), len(record)
    first = line.find(",")
    second = line.find(",", first + 1) if first >= 0 else -1
    if second < 0:
        return "", line.count(",") + 1
    third = line.find(",", second + 1)
    value = line[second + 1 : third] if third >= 0 else line[second + 1 :].rstrip("\r\n")
    return value, line.count(",") + 1


def _counts(path: Path, line: int, trace_function: str, fields: list[str]) -> tuple[int, ...]:
    counts: list[int] = []
    for minute, text in enumerate(fields, start=1):
        text = text.strip()
        if text.isascii() and text.isdigit():
            counts.append(int(text))
            continue
        try:
            negative = int(text) < 0
        except ValueError:
            negative = False
        why = "is negative" if negative else "is not an integer"
        raise SpecError(
            f"{_where(path, line)}: HashFunction {trace_function!r}, minute column '{minute}' "
            f"(column {len(TRACE_COLUMNS) + minute}): count {text!r} {why}"
        )
    return tuple(counts)


def load_trace(path: str | Path, trace_functions: Mapping[str, str]) -> Trace:
    """The rows of ``trace_functions``' hashes in a trace file, validated, in one pass.

    ``trace_functions`` maps ``HashFunction`` values to function names; other
    rows are skipped unread. Every problem is a :class:`SpecError` naming it:
    the header, a row's field count, a count (row and column), a mapped hash
    found twice or not at all.
    """
    path = Path(path)
    if not trace_functions:
        raise SpecError("trace_functions: empty; map at least one HashFunction to a function")
    for trace_function, function in trace_functions.items():
        if not trace_function or not function:
            raise SpecError(
                f"trace_functions: {trace_function!r} = {function!r}; "
                "both the HashFunction and the function name must be non-empty"
            )
    found: dict[str, TracedFunction] = {}
    try:
        with path.open(encoding="utf-8-sig") as file:
            header_line = file.readline()
            if not header_line.strip():
                raise SpecError(
                    f"trace {path}: no header (expected {','.join(TRACE_COLUMNS)},1,2,...)"
                )
            minutes = _check_header(path, _split(header_line))
            width = len(TRACE_COLUMNS) + minutes
            for number, line in enumerate(file, start=2):
                if not line or line.isspace():
                    continue
                trace_function, fields = _function_field(line)
                if fields != width:
                    raise SpecError(
                        f"{_where(path, number)}: {fields} fields, the header has {width}"
                    )
                target = trace_functions.get(trace_function)
                if target is None:
                    continue
                if trace_function in found:
                    raise SpecError(
                        f"{_where(path, number)}: HashFunction {trace_function!r} appears "
                        f"again (first on line {found[trace_function].line}); a mapped "
                        "function must have one row"
                    )
                record = _split(line)
                found[trace_function] = TracedFunction(
                    trace_function=trace_function,
                    function=target,
                    trigger=record[_TRIGGER_COLUMN],
                    line=number,
                    counts=_counts(path, number, trace_function, record[len(TRACE_COLUMNS) :]),
                )
    except OSError as exc:
        raise SpecError(f"trace {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"trace {path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise SpecError(f"trace {path}: not valid CSV: {exc}") from exc
    missing = [h for h in trace_functions if h not in found]
    if missing:
        raise SpecError(
            f"trace {path}: no row for HashFunction {', '.join(map(repr, missing))} "
            "(named in trace_functions)"
        )
    return Trace(
        path=str(path),
        minutes=minutes,
        functions=tuple(found[h] for h in trace_functions),
    )


def trace_arrivals(trace: Trace, *, seed: int, minute_s: float = 60.0) -> Iterator[TraceCall]:
    """Every traced invocation, in time order, as seconds since the replay's start.

    Each trace function draws from its own ``random.Random`` seeded with
    ``seed`` and its hash, so mapping one more function leaves the others'
    times as they were. Calls at the same time come in (function, hash) order.
    """
    if not (math.isfinite(minute_s) and minute_s > 0):
        raise SpecError(f"minute_s: {minute_s}; must be seconds > 0")
    return _arrivals(trace, seed, minute_s)


def _arrivals(trace: Trace, seed: int, minute_s: float) -> Iterator[TraceCall]:
    # A str seed is hashed with SHA-512 by random: the same in every process.
    rngs = [random.Random(f"faaslab-trace:{seed}:{f.trace_function}") for f in trace.functions]
    for minute in range(trace.minutes):
        start, end = minute * minute_s, (minute + 1) * minute_s
        last = math.nextafter(end, start)
        calls: list[tuple[float, str, str]] = []
        for traced, rng in zip(trace.functions, rngs, strict=True):
            for _ in range(traced.counts[minute]):
                # start + r * minute_s can round up to `end` itself for r close to 1.
                at = min(start + rng.random() * minute_s, last)
                calls.append((at, traced.function, traced.trace_function))
        calls.sort()
        for at, function, trace_function in calls:
            yield TraceCall(at, function, trace_function)


def trace_summary(trace: Trace) -> TraceSummary:
    """Totals for checks and reports: calls per function and hash, the busiest minute."""
    functions: dict[str, int] = {}
    per_hash: dict[str, int] = {}
    per_minute = [0] * trace.minutes
    for traced in trace.functions:
        calls = sum(traced.counts)
        per_hash[traced.trace_function] = calls
        functions[traced.function] = functions.get(traced.function, 0) + calls
        for minute, count in enumerate(traced.counts):
            per_minute[minute] += count
    busiest = max(range(trace.minutes), key=per_minute.__getitem__)
    return TraceSummary(
        minutes=trace.minutes,
        calls=sum(per_hash.values()),
        functions=functions,
        trace_functions=per_hash,
        busiest_minute=busiest,
        busiest_minute_calls=per_minute[busiest],
    )
