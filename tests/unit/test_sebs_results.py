"""SeBS's result files without an engine: key names, units, perf-cost accounting, result.csv.

The expected key sets are SeBS's attribute names (``sebs/faas/function.py``,
``sebs/experiments/result.py``, ``sebs/experiments/perf_cost.py``): its
serializer writes ``vars()`` of each object, so they are its JSON keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faaslab._errors import SpecError
from faaslab._sebs import (
    CSV_HEADER,
    ExecutionResult,
    PerfCostTally,
    ResultConfig,
    RunType,
    encode_sebs_json,
    execution_result,
    experiment_result,
    process_perf_cost,
    read_experiment_result,
    read_perf_cost_result,
    result_file_name,
    write_experiments_json,
    write_perf_cost_result,
)

RESULT_KEYS = {"output", "request_id", "times", "provider_times", "stats", "billing"}
TIMES_KEYS = {
    "client",
    "client_begin",
    "client_end",
    "benchmark",
    "initialization",
    "http_startup",
    "http_first_byte_return",
}
PROVIDER_KEYS = {"execution", "initialization"}
STATS_KEYS = {"memory_used", "cold_start", "failure"}
BILLING_KEYS = {"_memory", "_billed_time", "_gb_seconds"}
EXPERIMENT_KEYS = {"config", "begin_time", "end_time", "result_bucket", "_invocations", "_metrics"}
STATISTICS_KEYS = {
    "samples_generated",
    "failures",
    "failures_count",
    "incorrect",
    "incorrect_count",
    "cold_count",
}
CONFIG = ResultConfig(experiments={"runtime": {"language": "python"}}, deployment={"name": "local"})
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SeBS writes the client's local time: pin the zone so the strings are known."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def result(
    request_id: str = "req-1", *, cold: bool = False, failure: bool = False, **overrides: Any
) -> ExecutionResult:
    values: dict[str, Any] = {
        "request_id": request_id,
        "client_begin": T0 + 0.5,
        "client_end": T0 + 0.75,
        "http_startup_s": 0.000_412,
        "http_first_byte_s": 0.2125,
        "runtime_begin": "1700000000.600000",
        "runtime_end": "1700000000.700001",
        "is_cold": cold,
        "output": {"result": 42},
        "memory_peak_bytes": 3 * 2**20 + 2**19,
        "memory_mb": 128,
        "failure": failure,
        "init_us": 1500,
    }
    values.update(overrides)
    return execution_result(**values)


def as_json(value: Any) -> Any:
    return json.loads(encode_sebs_json(value))


# -- ExecutionResult ----------------------------------------------------------


@pytest.mark.usefixtures("utc")
def test_execution_result_has_sebs_keys_at_every_level() -> None:
    data = as_json(result())
    assert set(data) == RESULT_KEYS
    assert set(data["times"]) == TIMES_KEYS
    assert set(data["provider_times"]) == PROVIDER_KEYS
    assert set(data["stats"]) == STATS_KEYS
    assert set(data["billing"]) == BILLING_KEYS


@pytest.mark.usefixtures("utc")
def test_execution_result_units_are_sebs_units() -> None:
    data = as_json(result(cold=True))
    times = data["times"]
    assert times["client"] == 250_000  # µs
    assert times["client_begin"] == "2023-11-14 22:13:20.500000"  # str(datetime), local time
    assert times["client_end"] == "2023-11-14 22:13:20.750000"
    assert times["benchmark"] == 100_001  # µs, end - begin of the runtime's stamps
    assert times["initialization"] == 0
    assert times["http_startup"] == 0.000_412  # s, as pycurl's PRETRANSFER_TIME
    assert times["http_first_byte_return"] == 0.2125  # s, STARTTRANSFER_TIME
    assert data["provider_times"] == {"execution": 100_001, "initialization": 1500}
    assert data["stats"] == {"memory_used": 3.5, "cold_start": True, "failure": False}
    # Lambda's billing: ms rounded up, and SeBS's "gb_seconds" = ms * MB.
    assert data["billing"] == {"_memory": 128, "_billed_time": 101, "_gb_seconds": 101 * 128}


@pytest.mark.usefixtures("utc")
def test_client_datetimes_drop_a_zero_fraction_as_str_of_datetime_does() -> None:
    times = as_json(result(client_begin=T0, client_end=T0 + 2))["times"]
    assert (times["client_begin"], times["client_end"]) == (
        "2023-11-14 22:13:20",
        "2023-11-14 22:13:22",
    )
    assert times["client"] == 2_000_000


def test_output_is_the_runtimes_answer_with_the_true_cold_flag() -> None:
    data = as_json(result(cold=True))
    assert data["output"] == {
        "begin": "1700000000.600000",
        "end": "1700000000.700001",
        "request_id": "req-1",
        "is_cold": True,
        "result": {"output": {"result": 42}},
    }
    assert data["request_id"] == "req-1"


def test_the_rest_of_the_runtimes_answer_is_kept_in_output() -> None:
    extras = {"compute_time_us": 99_000, "instance": "f-0", "is_cold": "overridden"}
    data = as_json(result(cold=True, answer_extras=extras))
    assert data["output"]["compute_time_us"] == 99_000
    assert data["output"]["instance"] == "f-0"
    assert data["output"]["is_cold"] is True  # the measured fields win


def test_runtime_stamps_as_floats_are_written_as_seconds_dot_micros() -> None:
    data = as_json(result(runtime_begin=T0 + 0.25, runtime_end=T0 + 0.5))
    assert (data["output"]["begin"], data["output"]["end"]) == (
        "1700000000.250000",
        "1700000000.500000",
    )
    assert data["times"]["benchmark"] == 250_000


def test_billed_time_is_not_rounded_up_past_a_whole_millisecond() -> None:
    data = as_json(result(runtime_begin="1700000000.000000", runtime_end="1700000000.100000"))
    assert data["billing"]["_billed_time"] == 100


def test_warm_invocation_has_no_provider_initialization() -> None:
    assert as_json(result(cold=False))["provider_times"]["initialization"] == 0


def test_provider_execution_can_be_wider_than_the_handler() -> None:
    data = as_json(result(provider_execution_us=150_000))
    assert data["times"]["benchmark"] == 100_001
    assert data["provider_times"]["execution"] == 150_000
    assert data["billing"]["_billed_time"] == 150


def test_no_runtime_answer_bills_nothing_and_unknown_memory_is_null() -> None:
    data = as_json(
        result(runtime_begin=None, runtime_end=None, memory_peak_bytes=None, failure=True)
    )
    assert data["times"]["benchmark"] == 0
    assert data["provider_times"]["execution"] == 0
    assert data["billing"] == {"_memory": 128, "_billed_time": None, "_gb_seconds": 0}
    assert data["stats"] == {"memory_used": None, "cold_start": False, "failure": True}
    assert "begin" not in data["output"]


def test_encoding_is_sebs_serialize_sorted_keys_two_space_indent() -> None:
    encoded = encode_sebs_json(result()).decode()
    assert encoded == json.dumps(json.loads(encoded), sort_keys=True, indent=2)
    assert encoded.startswith('{\n  "billing": {\n    "_billed_time": 101,')


# -- ExperimentResult ---------------------------------------------------------


def test_experiment_result_has_sebs_keys_and_float_timestamps(tmp_path: Path) -> None:
    experiment = experiment_result(
        config=CONFIG,
        begin_time=T0,
        end_time=T0 + 12.5,
        invocations={"sebs-110.dynamic-html-python-3.11": [result("a"), result("b")]},
    )
    path = write_experiments_json(tmp_path / "out", experiment)
    assert path == tmp_path / "out" / "experiments.json"
    data = json.loads(path.read_text())
    assert set(data) == EXPERIMENT_KEYS
    assert set(data["config"]) == {"experiments", "deployment"}
    assert (data["begin_time"], data["end_time"]) == (T0, T0 + 12.5)
    assert data["result_bucket"] is None
    assert data["_metrics"] == {}
    assert list(data["_invocations"]["sebs-110.dynamic-html-python-3.11"]) == ["a", "b"]
    assert read_experiment_result(path) == experiment


def test_invocations_without_request_id_are_keyed_failed_n() -> None:
    experiment = experiment_result(
        config=CONFIG,
        begin_time=T0,
        end_time=T0,
        invocations={"f": [result(""), result("x"), result("", failure=True)]},
    )
    assert list(experiment.invocations["f"]) == ["failed-0", "x", "failed-2"]


def test_reads_a_result_written_by_sebs_itself(tmp_path: Path) -> None:
    # SeBS's local platform: no memory, no billing, provider times 0, extra keys.
    sebs_invocation = {
        "billing": {"_billed_time": None, "_gb_seconds": 0, "_memory": None},
        "output": {"begin": "1.0", "end": "2.0", "is_cold": False, "request_id": "r"},
        "provider_times": {"execution": 0, "initialization": 0},
        "request_id": "r",
        "stats": {"cold_start": False, "failure": False, "memory_used": None},
        "times": {
            "benchmark": 1_000_000,
            "client": 1_002_000,
            "client_begin": "2024-05-01 12:00:00.000100",
            "client_end": "2024-05-01 12:00:01.002100",
            "http_first_byte_return": 1.001,
            "http_startup": 0.0004,
            "initialization": 0,
        },
    }
    path = tmp_path / "experiments.json"
    path.write_text(
        json.dumps(
            {
                "_invocations": {"f": {"r": sebs_invocation}},
                "_metrics": {},
                "begin_time": 1.5,
                "config": {"deployment": {"name": "local"}, "experiments": {}},
                "end_time": 2.5,
                "result_bucket": None,
            }
        )
    )
    parsed = read_experiment_result(path)
    invocation = parsed.invocations["f"]["r"]
    assert invocation.stats.memory_used is None
    assert invocation.billing.billed_time is None
    assert json.loads(encode_sebs_json(parsed)) == json.loads(path.read_text())


def test_a_file_that_is_not_a_result_is_one_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "experiments.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match=r"experiments.json: not JSON"):
        read_experiment_result(path)
    path.write_text('{"config": {"experiments": {}, "deployment": {}}}')
    with pytest.raises(SpecError, match=r"not a SeBS experiment result: .*`begin_time`"):
        read_experiment_result(path)
    with pytest.raises(SpecError, match="cannot read it"):
        read_experiment_result(tmp_path / "missing.json")


# -- perf-cost: run types and the tally ---------------------------------------


def test_run_types_batch_and_cold_start_as_sebs() -> None:
    assert [t.value for t in RunType] == ["cold", "warm", "burst", "sequential"]
    assert [t.batch_size(50) for t in RunType] == [50, 50, 50, 1]
    assert [t.enforces_cold_start for t in RunType] == [True, False, True, False]
    assert [t.calls_before_first_batch for t in RunType] == [0, 0, 0, 1]


def test_result_file_names() -> None:
    assert result_file_name(RunType.COLD, 128) == "cold_results_128.json"
    assert result_file_name(RunType.SEQUENTIAL, None) == "sequential_results.json"


def test_the_first_batch_is_a_warm_up_but_its_failures_count() -> None:
    tally = PerfCostTally(RunType.BURST, repetitions=2)
    tally.add_batch([result("w1", cold=True), "boom in warm-up"])
    assert not tally.done
    assert tally.accepted == ()
    tally.add_batch([result("a", cold=True), result("b")])
    assert tally.done
    stats = tally.statistics()
    assert [r.request_id for r in tally.accepted] == ["a", "b"]
    assert (stats.samples_generated, stats.cold_count) == (2, 1)
    assert (stats.failures, stats.failures_count) == (["boom in warm-up"], 1)


def test_cold_run_keeps_warm_results_as_incorrect() -> None:
    tally = PerfCostTally(RunType.COLD, repetitions=2)
    tally.add_batch([result("warm-up")])
    tally.add_batch([result("c1", cold=True), result("w1", cold=False)])
    assert not tally.done
    tally.add_batch([result("c2", cold=True), "Failed invocation of function!"])
    stats = tally.statistics()
    assert [r.request_id for r in tally.accepted] == ["c1", "c2"]
    assert [r.request_id for r in stats.incorrect] == ["w1"]
    assert (stats.incorrect_count, stats.failures_count, stats.cold_count) == (1, 1, 2)


def test_warm_run_drops_cold_results_silently() -> None:
    tally = PerfCostTally(RunType.WARM, repetitions=3)
    tally.add_batch([result("warm-up", cold=True)])
    tally.add_batch([result("c", cold=True), result("w1"), result("w2")])
    tally.add_batch([result("w3"), result("w4")])
    stats = tally.statistics()
    # A whole batch is taken even past `repetitions`, as SeBS does.
    assert [r.request_id for r in tally.accepted] == ["w1", "w2", "w3", "w4"]
    assert (stats.samples_generated, stats.incorrect_count, stats.cold_count) == (4, 0, 0)
    assert tally.batches == 3


def test_a_result_flagged_failed_is_a_failure_not_a_sample() -> None:
    tally = PerfCostTally(RunType.SEQUENTIAL, repetitions=1)
    tally.add_batch([result("warm-up")])
    tally.add_batch([result("bad", failure=True)])
    assert not tally.done
    assert tally.statistics().failures == ["invocation bad failed"]


def test_tally_refuses_no_repetitions() -> None:
    with pytest.raises(ValueError, match="positive"):
        PerfCostTally(RunType.WARM, repetitions=0)


def test_perf_cost_file_is_an_experiment_result_plus_statistics(tmp_path: Path) -> None:
    tally = PerfCostTally(RunType.COLD, repetitions=1)
    tally.add_batch([result("warm-up")])
    tally.add_batch([result("c1", cold=True), result("w1")])
    run = tally.result(config=CONFIG, function="f", begin_time=T0, end_time=T0 + 1)
    path = write_perf_cost_result(tmp_path, RunType.COLD, 256, run)
    assert path == tmp_path / "perf-cost" / "cold_results_256.json"
    data = json.loads(path.read_text())
    assert set(data) == EXPERIMENT_KEYS | {"statistics"}
    assert set(data["statistics"]) == STATISTICS_KEYS
    assert list(data["_invocations"]["f"]) == ["c1"]
    assert set(data["statistics"]["incorrect"][0]) == RESULT_KEYS
    assert read_perf_cost_result(path) == run


def test_a_run_without_accepted_results_has_no_function_entry() -> None:
    tally = PerfCostTally(RunType.WARM, repetitions=1)
    tally.add_batch(["x"])
    run = tally.result(config=CONFIG, function="f", begin_time=T0, end_time=T0)
    assert run.invocations == {}


# -- perf-cost: process -------------------------------------------------------


def write_run(
    directory: Path, run_type: RunType, memory: int | None, results: list[ExecutionResult]
) -> Path:
    tally = PerfCostTally(run_type, repetitions=len(results))
    tally.add_batch([])  # the warm-up
    tally.add_batch(results)
    run = tally.result(config=CONFIG, function="f", begin_time=T0, end_time=T0 + 1)
    return write_perf_cost_result(directory, run_type, memory, run)


def test_process_writes_sebs_result_csv(tmp_path: Path) -> None:
    write_run(tmp_path, RunType.WARM, 256, [result("w256")])
    write_run(
        tmp_path,
        RunType.COLD,
        128,
        [result("c1", cold=True), result("c2", cold=True, memory_peak_bytes=None)],
    )
    write_run(tmp_path, RunType.WARM, 128, [result("w128", http_startup_s=0.1)])
    (tmp_path / "perf-cost" / "notes.json").write_text("{}")  # not a result file: ignored

    csv_path = process_perf_cost(tmp_path)

    assert csv_path == tmp_path / "perf-cost" / "result.csv"
    assert csv_path.read_bytes().decode() == (
        "memory,type,is_cold,exec_time,connection_time,client_time,provider_time,mem_used\r\n"
        "128,cold,True,100001,0.000412,250000,100001,3.5\r\n"
        "128,cold,True,100001,0.000412,250000,100001,\r\n"
        "128,warm,False,100001,0.1,250000,100001,3.5\r\n"
        "256,warm,False,100001,0.000412,250000,100001,3.5\r\n"
    )
    assert ",".join(CSV_HEADER) == csv_path.read_text().splitlines()[0]


def test_process_writes_processed_twins_without_outputs_and_reuses_them(tmp_path: Path) -> None:
    source = write_run(tmp_path, RunType.BURST, 512, [result("b1")])
    first = process_perf_cost(tmp_path).read_bytes()

    twin = tmp_path / "perf-cost" / "burst_results_512-processed.json"
    data = json.loads(twin.read_text())
    assert data["_invocations"]["f"]["b1"]["output"]["result"] == {}
    assert data["_invocations"]["f"]["b1"]["output"]["request_id"] == "b1"
    assert set(data["statistics"]) == STATISTICS_KEYS
    assert json.loads(source.read_text())["_invocations"]["f"]["b1"]["output"]["result"] == {
        "output": {"result": 42}
    }

    source.unlink()  # the twin alone still yields the rows
    assert process_perf_cost(tmp_path).read_bytes() == first


def test_process_a_run_without_memory_sizes_writes_memory_0(tmp_path: Path) -> None:
    write_run(tmp_path, RunType.SEQUENTIAL, None, [result("s1")])
    rows = process_perf_cost(tmp_path).read_text().splitlines()
    assert rows[1].startswith("0,sequential,False,")
    assert (tmp_path / "perf-cost" / "sequential_results-processed.json").is_file()


def test_process_without_results_is_one_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no perf-cost/ directory; run `experiment invoke"):
        process_perf_cost(tmp_path)
    (tmp_path / "perf-cost").mkdir()
    (tmp_path / "perf-cost" / "other.json").write_text("{}")
    with pytest.raises(SpecError, match=r"no <type>_results_<memory>.json files") as caught:
        process_perf_cost(tmp_path)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "perf-cost" / "result.csv").exists()


def test_process_names_a_broken_result_file(tmp_path: Path) -> None:
    (tmp_path / "perf-cost").mkdir()
    (tmp_path / "perf-cost" / "cold_results_128.json").write_text('{"config": 1}')
    with pytest.raises(SpecError, match=r"cold_results_128.json: not a SeBS perf-cost result"):
        process_perf_cost(tmp_path)
