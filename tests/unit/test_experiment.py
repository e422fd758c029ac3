"""Experiments without Docker: specs, arrivals, records, summaries, the driver on a fake."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import random
import re
import statistics
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from rich.console import Console

from faaslab import FunctionFailed, InvocationTimeout, SpecError
from faaslab._aggregate import InstanceMemory, MemoryReport, write_memory_report
from faaslab._cli._experiments import cmd_report
from faaslab._cli._progress import WorkloadProgress, open_progress
from faaslab._experiment import (
    ErrorRecord,
    ExperimentDeployment,
    ExperimentSpec,
    InvocationRecord,
    Progress,
    RunInfo,
    Workload,
    format_table,
    latency_stats,
    load_experiment_spec,
    percentile,
    poisson_arrivals,
    read_records,
    summarize,
    summarize_results,
)
from faaslab._experiment._driver import RunClock, WorkloadDriver
from faaslab._experiment._events import load_events, preload_events
from faaslab._experiment._records import RecordWriter, encode_record
from faaslab._experiment._results import DeploymentRunInfo, prepare_results_dir, write_json
from faaslab._experiment._samples import InstanceSamples, thin
from faaslab._function._actor import FunctionSpec
from faaslab._function._invocation import Invocation, RemoteError

EXAMPLE = Path(__file__).parents[2] / "docs" / "experiments" / "example.toml"


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "fn"
    directory.mkdir()
    (directory / "function.py").write_text("def handler(event):\n    return event\n")
    return directory


def write_toml(tmp_path: Path, workload: str, extra: str = "") -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "function.py").write_text("def handler(event):\n    return event\n")
    path = tmp_path / "experiment.toml"
    path.write_text(
        f"""
{extra}
[[deployments]]
name = "small"
functions = [{{ name = "fn", code = "fn", memory_mb = 128 }}]

[[workloads]]
{workload}
"""
    )
    return path


# -- the spec -------------------------------------------------------------------


def test_the_documented_example_loads() -> None:
    spec = load_experiment_spec(EXAMPLE)
    assert [d.name for d in spec.deployments] == ["mem128", "mem512"]
    assert [d.functions[0].memory_mb for d in spec.deployments] == [128, 512]
    assert [(w.start, w.loop) for w in spec.workloads] == [("cold", "closed"), ("warm", "closed")]
    # The code path is taken relative to the spec file.
    assert Path(spec.deployments[0].functions[0].code) == EXAMPLE.parent / "alloc"
    assert spec.deployments[0].measure_interval_ms == 1.0  # experiments sample by default


def test_a_deployment_spec_keeps_every_option(code: Path) -> None:
    plan = ExperimentDeployment(
        name="a",
        functions=[FunctionSpec(name="fn", code=str(code))],
        queue_timeout_s=5,
    )
    spec = plan.deployment_spec("run-a")
    assert spec.deployment_id == "run-a"
    assert spec.queue_timeout_s == 5
    assert spec.measure_interval_ms == 1.0


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        (
            'function = "fn"\ncount = 1\ncolour = "red"',
            "unknown field `colour` - at `$.workloads[0]`",
        ),
        ('function = "fn"\ncount = 1\nclients = "two"', "got `str` - at `$.workloads[0].clients`"),
        ('function = "fn"\ncount = "ten"', "at `$.workloads[0].count`"),
        ('function = "fn"\ncount = 1\nstart = "lukewarm"', "at `$.workloads[0].start`"),
        ('function = "fn"\nloop = "open"\nrate = 0\ncount = 5', "rate: 0"),
        ('function = "fn"\nloop = "open"\nrate = -3.5\ncount = 5', "rate: -3.5"),
        ('function = "fn"\nloop = "open"\ncount = 5', "an open loop needs a rate"),
        ('function = "fn"\nrate = 10.0\ncount = 5', "only an open loop"),
        ('function = "fn"', "give count, duration_s, or both"),
        ('function = "fn"\ncount = 0', "count: 0"),
        ('function = "fn"\nduration_s = -1.0', "duration_s: -1.0"),
        ('function = "nope"\ncount = 1', "no deployment has a function named 'nope'"),
        ('function = "fn"\ncount = 1\ndeployments = ["big"]', "no deployment named 'big'"),
        ('function = "fn"\ncount = 1\nevent = {}\nevents = [{}]', "event and events"),
        ('function = "fn"\ncount = 1\nevent_file = "missing.json"', "event_file"),
    ],
)
def test_bad_workloads_name_the_field(tmp_path: Path, workload: str, message: str) -> None:
    path = write_toml(tmp_path, workload)
    with pytest.raises(SpecError, match=re.escape(message)) as caught:
        load_experiment_spec(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_bad_top_level_and_deployment_fields(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'function = "fn"\ncount = 1', extra="repetitions = 0")
    with pytest.raises(SpecError, match="repetitions: 0"):
        load_experiment_spec(path)
    path = write_toml(tmp_path, 'function = "fn"\ncount = 1', extra="sead = 3")
    with pytest.raises(SpecError, match="unknown field `sead`"):
        load_experiment_spec(path)
    path = write_toml(tmp_path, 'function = "fn"\ncount = 1')
    path.write_text(path.read_text().replace("memory_mb = 128", 'memory_mb = "lots"'))
    with pytest.raises(SpecError, match=r"at `\$\.deployments\[0\]\.functions\[0\]\.memory_mb`"):
        load_experiment_spec(path)


def test_rate_must_be_positive_in_code_too() -> None:
    for rate in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(SpecError, match="rate"):
            Workload(function="fn", loop="open", rate=rate, count=1)


def test_deployment_names_are_unique_and_not_reserved(code: Path) -> None:
    functions = [FunctionSpec(name="fn", code=str(code))]
    workloads = [Workload(function="fn", count=1)]
    with pytest.raises(SpecError, match="duplicate deployment name 'a'"):
        ExperimentSpec(
            deployments=[
                ExperimentDeployment(name="a", functions=functions),
                ExperimentDeployment(name="a", functions=functions),
            ],
            workloads=workloads,
        )
    with pytest.raises(SpecError, match="reserved"):
        ExperimentDeployment(name="plots", functions=functions)
    with pytest.raises(SpecError, match="distinct labels"):
        ExperimentSpec(
            deployments=[ExperimentDeployment(name="a", functions=functions)],
            workloads=workloads * 2,
        )


def test_a_spec_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[deployments]\n")
    with pytest.raises(SpecError, match="not valid toml"):
        load_experiment_spec(path)
    with pytest.raises(SpecError, match="No such file"):
        load_experiment_spec(tmp_path / "missing.toml")


# -- events ---------------------------------------------------------------------


def test_events_from_files(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text('{"a": 1}')
    many = tmp_path / "many.json"
    many.write_text('[{"a": 1}, {"a": 2}]')
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3}\n')
    for path, expected in ((one, 1), (many, 2), (lines, 3)):
        events = load_events(Workload(function="fn", count=1, event_file=str(path)))
        assert events is not None
        assert len(events) == expected
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(SpecError, match="line 2 is not JSON"):
        load_events(Workload(function="fn", count=1, event_file=str(bad)))
    scalar = tmp_path / "scalar.json"
    scalar.write_text("[1]")
    with pytest.raises(SpecError, match="events are JSON objects"):
        load_events(Workload(function="fn", count=1, event_file=str(scalar)))
    assert load_events(Workload(function="fn", count=1)) is None  # the deployment's, or {}


def sebs_spec(code: Path, *sizes: str) -> ExperimentSpec:
    return ExperimentSpec(
        deployments=[
            ExperimentDeployment(name="a", functions=[FunctionSpec(name="fn", code=str(code))])
        ],
        workloads=[
            Workload(function="fn", count=1, sebs_size=size, label=f"w{i}")
            for i, size in enumerate(sizes)
        ],
    )


def test_sebs_inputs_need_a_sebs_benchmark(code: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = sebs_spec(code, "test")
    with pytest.raises(SpecError, match="is not a SeBS benchmark directory"):
        preload_events(spec)
    monkeypatch.setitem(sys.modules, "faaslab._sebs", None)  # as if it could not be imported
    with pytest.raises(SpecError, match=re.escape("SeBS inputs need faaslab._sebs")):
        preload_events(spec)
    with pytest.raises(SpecError, match="one deployment has one input size"):
        sebs_spec(code, "test", "large")


def test_sebs_sizes_reach_the_deployment(tmp_path: Path) -> None:
    benchmark = Path(__file__).parents[1] / "data" / "sebs" / "900.storage-roundtrip"
    spec = sebs_spec(benchmark, "small")
    assert preload_events(spec) == {"w0": None}  # generated when the deployment starts
    deployment = spec.deployments[0]
    assert deployment.deployment_spec("x", sebs_size="small").sebs_size == "small"
    assert deployment.deployment_spec("x").sebs_size == deployment.sebs_size


# -- arrivals -------------------------------------------------------------------


def test_poisson_arrivals_have_the_requested_rate_and_exponential_gaps() -> None:
    rate, n = 200.0, 20_000
    times = list(poisson_arrivals(rate, random.Random(7), count=n))
    assert len(times) == n
    assert all(b > a for a, b in itertools.pairwise(times))
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    mean = statistics.fmean(gaps)
    # The mean of n exponential gaps has a relative standard error of 1/sqrt(n) (0.7 %).
    assert mean == pytest.approx(1 / rate, rel=4 / math.sqrt(n))
    # Exponential: standard deviation equal to the mean, P(gap > mean) = 1/e.
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.04)
    assert sum(g > mean for g in gaps) / n == pytest.approx(math.exp(-1), abs=0.015)
    # Counts per second are Poisson: variance equal to the mean.
    per_second = [0] * math.ceil(times[-1])
    for t in times:
        per_second[int(t)] += 1
    full = per_second[:-1]
    assert statistics.pvariance(full) / statistics.fmean(full) == pytest.approx(1.0, abs=0.45)


def test_poisson_arrivals_bounded_by_duration_and_seeded() -> None:
    rate, duration = 1000.0, 5.0
    times = list(poisson_arrivals(rate, random.Random(3), duration_s=duration))
    assert all(t < duration for t in times)
    expected = rate * duration
    assert abs(len(times) - expected) < 4 * math.sqrt(expected)
    again = list(poisson_arrivals(rate, random.Random(3), duration_s=duration))
    assert again == times
    both = list(poisson_arrivals(rate, random.Random(3), count=10, duration_s=duration))
    assert both == times[:10]
    with pytest.raises(ValueError, match="rate"):
        next(poisson_arrivals(0, random.Random(1), count=1))


# -- records --------------------------------------------------------------------


def record(**fields: Any) -> InvocationRecord:
    base: dict[str, Any] = {
        "deployment": "a",
        "function": "fn",
        "workload": "fn-warm-closed",
        "start": "warm",
        "repetition": 0,
        "seq": 0,
        "t_scheduled": 0.0,
        "t_start": 0.0,
        "t_end": 0.1,
        "is_cold": False,
        "latency_s": 0.1,
    }
    return InvocationRecord(**{**base, **fields})


def test_records_round_trip_with_every_field(tmp_path: Path) -> None:
    original = record(
        error=ErrorRecord("handler", "ValueError", "boom"), memory_peak_bytes=123, begin=1.5
    )
    line = encode_record(original)
    assert line.endswith(b"\n")
    fields = json.loads(line)
    assert set(fields) == set(InvocationRecord.__struct_fields__)
    assert fields["error"] == {"kind": "handler", "type": "ValueError", "message": "boom"}
    assert fields["container_start_s"] is None
    writer = RecordWriter(tmp_path / "invocations.jsonl")
    writer.write(original)
    writer.write(record(seq=1))
    writer.close()
    assert (writer.written, writer.errors) == (2, 1)
    assert list(read_records(tmp_path / "invocations.jsonl")) == [original, record(seq=1)]


def test_a_record_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "invocations.jsonl"
    path.write_bytes(encode_record(record()) + encode_record(record(seq=1))[:40])
    assert [r.seq for r in read_records(path)] == [0]
    path.write_bytes(b"garbage\n" + encode_record(record()))
    with pytest.raises(SpecError, match="line 1 is not an invocation record"):
        list(read_records(path))


# -- summaries ------------------------------------------------------------------


def test_percentiles_interpolate_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile([5.0], 99) == 5.0
    stats = latency_stats([0.3, 0.1, 0.2])
    assert stats is not None
    assert (stats.count, stats.p50_s, stats.max_s) == (3, 0.2, 0.3)
    assert stats.mean_s == pytest.approx(0.2)
    assert latency_stats([]) is None
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summary_separates_cold_and_warm_and_counts_errors() -> None:
    records = [
        record(
            is_cold=True,
            latency_s=1.0,
            start="cold",
            container_start_s=0.5,
            workload="w-cold",
            t_start=0.0,
            t_end=2.0,
        ),
        record(
            is_cold=True,
            latency_s=3.0,
            start="cold",
            container_start_s=0.7,
            workload="w-cold",
            t_start=0.0,
            t_end=2.0,
            seq=1,
        ),
        # No answer: a cold-mode call that failed counts as cold.
        record(
            is_cold=None,
            latency_s=None,
            start="cold",
            workload="w-cold",
            error=ErrorRecord("platform", "InstanceStartError", "x"),
            t_end=1.0,
        ),
        *[
            record(
                latency_s=0.01 * (i + 1),
                seq=i,
                t_start=10.0,
                t_end=10.0 + (i + 1) / 10,
                memory_peak_bytes=1000 * i,
            )
            for i in range(10)
        ],
        record(
            latency_s=9.0,
            error=ErrorRecord("handler", "ValueError", "no"),
            t_start=10.0,
            t_end=10.5,
            seq=10,
        ),
        record(deployment="b", latency_s=0.5),
    ]
    report = MemoryReport(
        deployment="a",
        instances=(
            InstanceMemory(
                function="fn",
                instance=0,
                container_id="c0",
                source="cgroup",
                interval_ms=1,
                samples=100,
                precision_errors=0,
                mean_bytes=10.0,
                max_bytes=20,
                kernel_peak_bytes=25,
            ),
            InstanceMemory(
                function="fn",
                instance=1,
                container_id="c1",
                source="cgroup",
                interval_ms=1,
                samples=300,
                precision_errors=0,
                mean_bytes=30.0,
                max_bytes=40,
            ),
        ),
    )
    summary = summarize(
        records,
        experiment="x",
        status="complete",
        deployments=["b", "a"],
        memory={"a": report},
        memory_mb={("a", "fn"): 128},
        dropped={("a", "fn"): 4},
    )
    assert [(f.deployment, f.function) for f in summary.functions] == [("b", "fn"), ("a", "fn")]
    a = summary.functions[1]
    assert (a.calls, a.errors, a.dropped, a.memory_mb) == (14, 2, 4, 128)
    assert a.error_types == {"InstanceStartError": 1, "ValueError": 1}
    assert (a.cold.calls, a.cold.errors) == (3, 1)
    assert a.cold.latency is not None
    assert a.cold.latency.p50_s == 2.0
    assert (a.warm.calls, a.warm.errors) == (11, 1)
    # The failed call's 9 s is not a latency.
    assert a.warm.latency is not None
    assert a.warm.latency.max_s == pytest.approx(0.1)
    assert a.container_start is not None
    assert a.container_start.p50_s == pytest.approx(0.6)
    # Active time: the cold run spans 0-2 s, the warm run 10-11 s.
    assert a.active_s == pytest.approx(3.0)
    assert a.throughput_per_s == pytest.approx(12 / 3.0)
    assert a.call_peak_max_bytes == 9000
    assert a.call_peak_mean_bytes == pytest.approx(4500)
    assert a.memory_mean_bytes == pytest.approx((10 * 100 + 30 * 300) / 400)
    assert (a.memory_max_bytes, a.memory_kernel_peak_bytes) == (40, 25)
    assert (summary.calls, summary.errors, summary.dropped) == (15, 2, 4)
    table = format_table(summary)
    assert "cold" in table
    assert "warm" in table
    assert "1 x ValueError" in table
    assert "4 open-loop arrivals dropped" in table


# -- the driver, on a fake deployment ----------------------------------------------


class FakeInstance:
    def __init__(self, name: str) -> None:
        self.name = name
        self.container_id = f"id-{name}"
        self.start_s = 0.25


class FakeDeployment:
    """What the driver uses of a Deployment, answering at once (or failing as told)."""

    def __init__(self, *, fail_after: int | None = None, raises: Exception | None = None) -> None:
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.warm_ups = 0
        self.cold_instances = 0
        self.fail_after = fail_after
        self.raises = raises
        self.pool = [FakeInstance("fn-0"), FakeInstance("fn-1")]

    def instances(self, function: str) -> list[FakeInstance]:
        return self.pool

    async def invoke(
        self, function: str, event: Mapping[str, Any], *, timeout: float | None, check: bool
    ) -> Invocation:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise FunctionFailed(f"{function} has failed: test")
        if self.raises is not None:
            raise self.raises
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await anyio.lowlevel.checkpoint()  # let other clients in
        finally:
            self.in_flight -= 1
        return self._answer(self.pool[self.calls % 2], event, cold=False)

    async def invoke_on(
        self,
        instance: FakeInstance,
        event: Mapping[str, Any],
        *,
        timeout: float | None,
        check: bool,
    ) -> Invocation:
        if instance in self.pool:
            self.warm_ups += 1
        return self._answer(instance, event, cold=True)

    @asynccontextmanager
    async def open_cold_instance(self, function: str) -> AsyncIterator[FakeInstance]:
        self.cold_instances += 1
        yield FakeInstance(f"fn-cold{self.cold_instances}")

    def _answer(self, instance: FakeInstance, event: Mapping[str, Any], cold: bool) -> Invocation:
        error = RemoteError("ValueError", "asked to") if event.get("fail") else None
        return Invocation(
            request_id="r",
            function="fn",
            instance=instance.name,
            container_id=instance.container_id,
            is_cold=cold,
            begin=1.0,
            end=1.5,
            compute_time_us=500_000,
            client_send=1.0,
            client_receive=1.6,
            latency_s=0.6,
            error=error,
            memory_peak_bytes=42,
        )


async def drive(
    dep: FakeDeployment, workload: Workload, events: list[dict[str, Any]] | None = None
) -> tuple[WorkloadDriver, list[InvocationRecord], list[Progress]]:
    records: list[InvocationRecord] = []
    progress: list[Progress] = []
    driver = WorkloadDriver(
        dep,  # type: ignore[arg-type]
        "a",
        workload,
        0,
        events=events or [{}],
        sink=records.append,
        clock=RunClock(),
        rng=random.Random(1),
        progress=progress.append,
    )
    await driver.run()
    return driver, records, progress


@pytest.mark.anyio
async def test_closed_loop_makes_exactly_count_calls_with_at_most_clients_at_once() -> None:
    dep = FakeDeployment()
    events = [{"i": 0}, {"i": 1}, {"fail": True}]
    driver, records, progress = await drive(
        dep, Workload(function="fn", clients=3, count=20, start="warm"), events
    )
    assert sorted(r.seq for r in records) == list(range(20))
    assert dep.most_in_flight == 3
    assert dep.warm_ups == 2  # one per pool instance, not recorded
    # Events are cycled by sequence number: every third call fails in the handler.
    failed = sorted(r.seq for r in records if r.error is not None)
    assert failed == [s for s in range(20) if s % 3 == 2]
    assert all(r.error.kind == "handler" for r in records if r.error is not None)
    assert (driver.calls, driver.errors) == (20, len(failed))
    assert progress[-1].calls == 20
    info = driver.info()
    assert (info.calls, info.stopped) == (20, None)


@pytest.mark.anyio
async def test_a_failed_function_stops_its_workload() -> None:
    dep = FakeDeployment(fail_after=3)
    driver, records, _ = await drive(dep, Workload(function="fn", count=100, start="natural"))
    assert len(records) == 4
    assert records[-1].error == ErrorRecord("platform", "FunctionFailed", "fn has failed: test")
    assert driver.info().stopped is not None
    assert driver.info().stopped.startswith("function failed")  # type: ignore[union-attr]
    assert dep.warm_ups == 0


@pytest.mark.anyio
async def test_platform_errors_become_records() -> None:
    dep = FakeDeployment(raises=InvocationTimeout("no answer"))
    _, records, _ = await drive(dep, Workload(function="fn", count=3, start="natural"))
    assert [r.error for r in records] == [
        ErrorRecord("platform", "InvocationTimeout", "no answer")
    ] * 3
    assert all(r.latency_s is None and r.instance is None for r in records)


@pytest.mark.anyio
async def test_cold_calls_get_fresh_instances_with_their_start_time() -> None:
    dep = FakeDeployment()
    _, records, _ = await drive(dep, Workload(function="fn", count=3, start="cold"))
    assert sorted(r.instance or "" for r in records) == ["fn-cold1", "fn-cold2", "fn-cold3"]
    assert all(r.is_cold and r.container_start_s == 0.25 for r in records)
    assert dep.calls == 0  # nothing went to the pool


@pytest.mark.anyio
async def test_open_loop_drops_arrivals_beyond_the_in_flight_cap() -> None:
    dep = FakeDeployment()
    # A billion arrivals a second: all 50 are due before the first call can run.
    workload = Workload(
        function="fn", loop="open", rate=1e9, count=50, max_in_flight=5, start="natural"
    )
    driver, records, _ = await drive(dep, workload)
    assert (len(records), driver.dropped) == (5, 45)
    assert sorted(r.seq for r in records) == [0, 1, 2, 3, 4]
    assert all(r.t_scheduled <= r.t_start for r in records)
    assert driver.info().dropped == 45


# -- results directories -----------------------------------------------------------


def test_a_results_dir_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "notes.md").write_text("mine")
    with pytest.raises(SpecError, match="exists and is not empty") as caught:
        prepare_results_dir(results, overwrite=False)
    assert caught.value.exit_code == 2
    with pytest.raises(SpecError, match="holds no faaslab results"):
        prepare_results_dir(results, overwrite=True)
    (results / "notes.md").unlink()
    prepare_results_dir(results, overwrite=False)  # empty: fine


def test_overwrite_removes_only_what_a_run_wrote(tmp_path: Path) -> None:
    results = synthetic_results(tmp_path)
    (results / "notes.md").write_text("mine")
    prepare_results_dir(results, overwrite=True)
    assert sorted(p.name for p in results.iterdir()) == ["notes.md"]


# -- report -----------------------------------------------------------------------


def synthetic_results(tmp_path: Path) -> Path:
    """A results directory as a run leaves it, without running anything."""
    results = tmp_path / "results"
    results.mkdir()
    run = RunInfo(
        experiment="synthetic",
        faaslab_version="0",
        status="complete",
        started_at="now",
        epoch_unix=1000.0,
        seed=1,
        deployments=[DeploymentRunInfo(name="a", deployment_id="x-a", memory_mb={"fn": 128})],
    )
    write_json(results / "run.json", run)
    writer = RecordWriter(results / "invocations.jsonl")
    for i in range(20):
        cold = i < 4
        writer.write(
            record(
                seq=i,
                is_cold=cold,
                start="cold" if cold else "warm",
                latency_s=0.05 + 0.01 * i + (0.3 if cold else 0),
                container_id=f"c{i if cold else 99}",
                begin=1000.0 + i * 0.2,
                end=1000.1 + i * 0.2,
                workload="w-cold" if cold else "w-warm",
            )
        )
    writer.close()
    (results / "a").mkdir()
    samples = InstanceSamples(
        deployment="a",
        function="fn",
        instance="fn-0",
        container_id="c99",
        samples=400,
        bucket=1,
        t_s=[i / 100 for i in range(400)],
        bytes=[10_000_000 + i * 1000 for i in range(400)],
    )
    (results / "a" / "memory_samples.jsonl").write_bytes(msgspec.json.encode(samples) + b"\n")
    write_memory_report(results / "a" / "memory_report.json", MemoryReport(deployment="a"))
    return results


def test_report_prints_the_table_and_writes_both_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    results = synthetic_results(tmp_path)
    assert cmd_report(argparse.Namespace(results=str(results))) == 0
    out = capsys.readouterr().out
    assert "synthetic: complete, 20 calls, 0 errors" in out
    for name in ("latency_cdf.png", "memory_a.png"):
        assert (results / "plots" / name).read_bytes().startswith(b"\x89PNG")
    assert summarize_results(results).functions[0].cold.calls == 4


def test_report_without_matplotlib_says_how_to_get_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = synthetic_results(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert cmd_report(argparse.Namespace(results=str(results))) == 0
    out = capsys.readouterr().out
    assert "synthetic: complete" in out
    assert "pip install 'faaslab[plot]'" in out
    assert not (results / "plots").exists()


def test_report_of_a_directory_without_results(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a faaslab results directory"):
        cmd_report(argparse.Namespace(results=str(tmp_path)))


def test_importing_faaslab_does_not_import_matplotlib() -> None:
    import subprocess

    code = (
        "import sys, faaslab, faaslab._experiment, faaslab._cli._experiments, "
        "faaslab._experiment._plots; "
        "sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- small pieces ------------------------------------------------------------------


def test_thinning_keeps_the_peak_of_each_bucket() -> None:
    times, values = thin([0, 1, 2, 3, 4, 5, 6], [5, 9, 1, 2, 8, 3, 7], 3)
    assert (times, values) == ([1, 4, 6], [9, 8, 7])
    assert thin([1, 2], [3, 4], 1) == ([1, 2], [3, 4])


def test_the_workload_progress_bar() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    state = Progress(
        deployment="a",
        workload="w",
        repetition=0,
        calls=3,
        errors=1,
        dropped=0,
        count=10,
        duration_s=None,
        elapsed_s=1.2,
    )
    with open_progress(console=console) as bars:
        workloads = WorkloadProgress(bars)
        workloads.update(state)
        (task,) = bars.tasks
        assert (task.completed, task.total) == (3, 10)
        assert task.description == "a w#0: 3/10 calls, 1 errors"
        # A timed workload counts seconds.
        workloads.update(msgspec.structs.replace(state, workload="t", count=None, duration_s=5))
        timed = bars.tasks[1]
        assert (timed.completed, timed.total) == (1.2, 5)
        workloads.finish()
        assert bars.tasks[0].completed == 10
    assert "a w#0: 3/10 calls, 1 errors" in console.file.getvalue()  # type: ignore[attr-defined]
