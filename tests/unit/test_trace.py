"""Azure Functions 2019 trace replay (no I/O beyond reading the trace file)."""

from __future__ import annotations

import itertools
import math
import tracemalloc
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

import faaslab._experiment._trace as trace_module
from faaslab import SpecError
from faaslab._experiment._trace import (
    Trace,
    TraceCall,
    TracedFunction,
    load_trace,
    trace_arrivals,
    trace_summary,
)

HEADER = "HashOwner,HashApp,HashFunction,Trigger"


def write_trace(path: Path, rows: list[tuple[str, list[int]]], *, minutes: int) -> Path:
    lines = [HEADER + "," + ",".join(str(m) for m in range(1, minutes + 1))]
    for function, counts in rows:
        assert len(counts) == minutes
        lines.append(f"owner,app-{function},{function},http," + ",".join(map(str, counts)))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write_trace(
        tmp_path / "trace.csv",
        [("f1", [1, 0, 3]), ("unmapped", [9, 9, 9]), ("f2", [0, 2, 0]), ("f3", [4, 0, 0])],
        minutes=3,
    )


def test_mapped_rows_in_mapping_order_unmapped_ones_ignored(small: Path) -> None:
    trace = load_trace(small, {"f2": "fn-b", "f1": "fn-a"})
    assert trace == Trace(
        path=str(small),
        minutes=3,
        functions=(
            TracedFunction(trace_function="f2", function="fn-b", trigger="http", line=4,
                           counts=(0, 2, 0)),
            TracedFunction(trace_function="f1", function="fn-a", trigger="http", line=2,
                           counts=(1, 0, 3)),
        ),
    )  # fmt: skip


def test_the_summary_totals_per_function_and_hash(small: Path) -> None:
    summary = trace_summary(load_trace(small, {"f1": "fn-a", "f2": "fn-b", "f3": "fn-a"}))
    assert summary.minutes == 3
    assert summary.calls == 4 + 2 + 4
    assert summary.functions == {"fn-a": 8, "fn-b": 2}
    assert summary.trace_functions == {"f1": 4, "f2": 2, "f3": 4}
    assert (summary.busiest_minute, summary.busiest_minute_calls) == (0, 5)


def test_quotes_a_bom_crlf_and_blank_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    text = f'{HEADER},1,2\r\n"o,1",a,"f1",timer,2,3\r\n\r\no,a,f2,"queue",0,1\r\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    trace = load_trace(path, {"f1": "a", "f2": "b"})
    assert [(f.trigger, f.counts, f.line) for f in trace.functions] == [
        ("timer", (2, 3), 2),
        ("queue", (0, 1), 4),
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "no header"),
        ("Owner,HashApp,HashFunction,Trigger,1", "column 1 is 'Owner', expected 'HashOwner'"),
        ("HashOwner,HashApp,HashFunction", "column 4 is missing, expected 'Trigger'"),
        ("HashOwner,HashApp,HashFunction,Trigger", "no minute columns after Trigger"),
        (f"{HEADER},0,1", "column 5 is '0', expected '1'"),
        (f"{HEADER},1,2,4", "column 7 is '4', expected '3'"),
        (f"{HEADER},1,two", "column 6 is 'two', expected '2'"),
    ],
)
def test_bad_headers_say_which_column(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(header + "\n" if header else "")
    with pytest.raises(SpecError, match=message):
        load_trace(path, {"f": "fn"})


@pytest.mark.parametrize(
    ("value", "why"),
    [("1.5", "is not an integer"), ("-2", "is negative"), ("x", "is not an integer"),
     ("", "is not an integer")],
)  # fmt: skip
def test_bad_counts_are_named_by_row_and_column(tmp_path: Path, value: str, why: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER},1,2,3\no,a,other,http,1,1,1\no,a,f,http,4,{value},0\n")
    message = rf"line 3: HashFunction 'f', minute column '2' \(column 6\): count '{value}' {why}"
    with pytest.raises(SpecError, match=message):
        load_trace(path, {"f": "fn"})


def test_bad_counts_in_unmapped_rows_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER},1\no,a,junk,http,x\no,a,f,http,1\n")
    assert load_trace(path, {"f": "fn"}).functions[0].counts == (1,)


def test_a_row_of_the_wrong_width_is_an_error_mapped_or_not(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER},1,2\no,a,f,http,1,2\no,a,other,http,1\n")
    with pytest.raises(SpecError, match="line 3: 5 fields, the header has 6"):
        load_trace(path, {"f": "fn"})


def test_a_mapped_hash_missing_or_twice_is_named(small: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no row for HashFunction 'nope', 'gone' \(named in"):
        load_trace(small, {"f1": "a", "nope": "b", "gone": "c"})
    twice = write_trace(tmp_path / "twice.csv", [("f", [1]), ("g", [1]), ("f", [2])], minutes=1)
    with pytest.raises(
        SpecError, match=r"line 4: HashFunction 'f' appears again \(first on line 2"
    ):
        load_trace(twice, {"f": "a"})
    # a duplicate nobody maps is not our business
    assert load_trace(twice, {"g": "a"}).functions[0].counts == (1,)


def test_file_and_mapping_problems_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"missing\.csv: No such file"):
        load_trace(tmp_path / "missing.csv", {"f": "fn"})
    with pytest.raises(SpecError, match="trace_functions: empty"):
        load_trace(tmp_path / "missing.csv", {})
    with pytest.raises(SpecError, match="trace_functions: 'f' = ''"):
        load_trace(tmp_path / "missing.csv", {"f": ""})
    binary = tmp_path / "binary.csv"
    binary.write_bytes(HEADER.encode() + b",1\n\xff\xfe,\n")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_trace(binary, {"f": "fn"})


# --- arrivals -------------------------------------------------------------------------


def traced(trace_function: str, counts: list[int], function: str | None = None) -> TracedFunction:
    return TracedFunction(
        trace_function=trace_function,
        function=function or f"fn-{trace_function}",
        trigger="http",
        line=2,
        counts=tuple(counts),
    )


def make_trace(*functions: TracedFunction) -> Trace:
    return Trace(path="mem", minutes=len(functions[0].counts), functions=functions)


def test_every_invocation_is_made_in_its_minute_in_time_order() -> None:
    trace = make_trace(traced("a", [3, 0, 5, 1]), traced("b", [0, 7, 2, 0]))
    calls = list(trace_arrivals(trace, seed=1, minute_s=10.0))
    per_minute = Counter((c.trace_function, int(c.at_s // 10.0)) for c in calls)
    assert per_minute == {("a", 0): 3, ("a", 2): 5, ("a", 3): 1, ("b", 1): 7, ("b", 2): 2}
    times = [c.at_s for c in calls]
    assert times == sorted(times)
    assert all(0.0 <= t < 40.0 for t in times)
    assert {c.function for c in calls if c.trace_function == "a"} == {"fn-a"}


def test_arrivals_are_determined_by_the_seed() -> None:
    trace = make_trace(traced("a", [20, 5]), traced("b", [3, 30]))
    first = list(trace_arrivals(trace, seed=42))
    assert first == list(trace_arrivals(trace, seed=42))
    assert first != list(trace_arrivals(trace, seed=43))
    assert first[0] == TraceCall(first[0].at_s, first[0].function, first[0].trace_function)


def test_mapping_another_function_leaves_the_others_times_alone() -> None:
    alone = list(trace_arrivals(make_trace(traced("a", [4, 4])), seed=5))
    both = list(trace_arrivals(make_trace(traced("b", [9, 9]), traced("a", [4, 4])), seed=5))
    assert [c for c in both if c.trace_function == "a"] == alone


def test_calls_are_spread_uniformly_over_their_minute() -> None:
    calls = list(trace_arrivals(make_trace(traced("a", [0, 20_000])), seed=9, minute_s=60.0))
    assert all(60.0 <= c.at_s < 120.0 for c in calls)
    # Ten 6-second slices: chi-square with 9 degrees of freedom, 0.1 % critical value 27.9.
    slices = Counter(int((c.at_s - 60.0) // 6.0) for c in calls)
    expected = len(calls) / 10
    chi2 = sum((slices[s] - expected) ** 2 / expected for s in range(10))
    assert chi2 < 27.9
    assert max(c.at_s for c in calls) > 119.9  # the whole minute is used
    assert min(c.at_s for c in calls) < 60.1


def test_a_call_never_lands_on_the_next_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    class Edge:
        def __init__(self, seed: str) -> None:
            pass

        def random(self) -> float:
            return 1.0 - 2.0**-53  # the largest random.random() returns

    # 59 * 60 + 60 * (1 - 2**-53) rounds to 3600.0, the next minute's start.
    assert 59 * 60.0 + Edge("").random() * 60.0 == 3600.0
    monkeypatch.setattr(trace_module, "random", SimpleNamespace(Random=Edge))
    (call,) = trace_arrivals(make_trace(traced("a", [0] * 59 + [1])), seed=0)
    assert 3540.0 <= call.at_s < 3600.0


def test_minute_s_must_be_positive() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(SpecError, match="minute_s"):
            trace_arrivals(make_trace(traced("a", [1])), seed=0, minute_s=bad)


# --- a day-long trace with many rows, in bounded memory -------------------------------

ROWS, MINUTES = 20_000, 1440


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "d01.csv"
    body = ",".join(str(n % 7) for n in range(MINUTES))
    mapped = ",".join("3" if n % 10 == 0 else "0" for n in range(MINUTES))
    with path.open("w") as file:
        file.write(HEADER + "," + ",".join(str(m) for m in range(1, MINUTES + 1)) + "\n")
        for row in range(ROWS):
            if row in (7_777, ROWS - 1):
                file.write(f"owner,app,hot-{row},http,{mapped}\n")
            else:
                file.write(f"owner{row},app{row},{row:032x},http,{body}\n")
    return path


def test_a_big_trace_is_read_in_bounded_memory(big_trace: Path) -> None:
    size = big_trace.stat().st_size
    assert size > 50_000_000
    tracemalloc.start()
    try:
        trace = load_trace(big_trace, {"hot-7777": "a", f"hot-{ROWS - 1}": "b"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [f.line for f in trace.functions] == [7_779, ROWS + 1]
    assert trace_summary(trace).functions == {"a": 3 * 144, "b": 3 * 144}
    # The kept counts are two rows of 1,440 small ints: the rest is a line or two.
    assert peak < 1_000_000, f"peak {peak} bytes reading a {size}-byte trace"


def test_replaying_holds_one_minute_of_calls_at_a_time() -> None:
    trace = make_trace(traced("a", [100] * MINUTES), traced("b", [50] * MINUTES))
    tracemalloc.start()
    try:
        count = 0
        last = -1.0
        for call in trace_arrivals(trace, seed=3, minute_s=1.0):
            assert call.at_s >= last
            last = call.at_s
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 150 * MINUTES
    # 216,000 calls would take tens of MB; one minute's 150 take a few kB.
    assert peak < 200_000, f"peak {peak} bytes"


def test_counts_of_a_replayed_big_trace_are_exact(big_trace: Path) -> None:
    trace = load_trace(big_trace, {"hot-7777": "a"})
    calls = trace_arrivals(trace, seed=11, minute_s=0.5)
    per_minute = Counter(int(c.at_s // 0.5) for c in itertools.islice(calls, 10_000))
    assert per_minute == {m: 3 for m in range(0, MINUTES, 10)}
