"""Scaling and trace replay as the specs, records, summaries and files carry them (no Docker)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from faaslab import SpecError
from faaslab._deployment import PoolAccounting
from faaslab._errors import SamplingError
from faaslab._experiment import (
    ErrorRecord,
    InvocationRecord,
    Workload,
    load_experiment_spec,
    summarize,
)
from faaslab._experiment._driver import RunClock, WorkloadDriver
from faaslab._experiment._pools import SCALING, PoolSeries, pool_series, read_pools, write_pools
from faaslab._experiment._records import decode_record
from faaslab._experiment._trace import load_trace
from faaslab._function import Invocation
from faaslab._sampling import find_cpu_file
from faaslab._sampling._cgroup import parse_cpu_usage_us
from faaslab._sampling._cpu import CpuMeter
from faaslab._spec import FunctionSpec, ScalingSpec, load_deployment_spec
from faaslab._state import DeploymentState, load_state, write_state

HEADER = "HashOwner,HashApp,HashFunction,Trigger"


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "fn"
    directory.mkdir()
    (directory / "function.py").write_text("def handler(event):\n    return event\n")
    return directory


def write_trace(path: Path, rows: dict[str, list[int]]) -> Path:
    minutes = len(next(iter(rows.values())))
    lines = [HEADER + "," + ",".join(str(m + 1) for m in range(minutes))]
    for function, counts in rows.items():
        lines.append(f"o,a,{function},http," + ",".join(map(str, counts)))
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the deployment spec ----------------------------------------------------------------


def test_scaling_in_a_toml_and_a_json_spec(tmp_path: Path, code: Path) -> None:
    toml = tmp_path / "dep.toml"
    toml.write_text(
        '[[functions]]\nname = "fn"\ncode = "fn"\n'
        'scaling = { policy = "keep-alive", keep_alive_s = 30, max_instances = 8 }\n'
    )
    spec = load_deployment_spec(toml)
    scaling = spec.functions[0].scaling
    assert (scaling.policy, scaling.keep_alive_s, scaling.max_instances) == ("keep-alive", 30, 8)
    as_json = tmp_path / "dep.json"
    as_json.write_bytes(msgspec.json.encode(msgspec.to_builtins(spec)))
    assert load_deployment_spec(as_json) == spec
    assert FunctionSpec(name="fn", code=str(code)).scaling.policy == "fixed"  # the default


@pytest.mark.parametrize(
    ("scaling", "message"),
    [
        ('{ policy = "keep-alive" }', "scaling.max_instances: None; policy 'keep-alive' needs"),
        ('{ policy = "lazy", max_instances = 2 }', "Invalid enum value 'lazy'"),
        ('{ keep_alive_s = 3 }', "policy 'fixed' runs `instances` instances always"),
        ('{ policy = "keep-alive", max_instances = 2, min_instances = 3 }', "must be >= min"),
        ('{ policy = "keep-alive", max_instances = 2, keepalive = 3 }', "unknown field"),
    ],
)
def test_bad_scaling_is_one_line_naming_the_field(
    tmp_path: Path, code: Path, scaling: str, message: str
) -> None:
    path = tmp_path / "dep.toml"
    path.write_text(f'[[functions]]\nname = "fn"\ncode = "fn"\nscaling = {scaling}\n')
    with pytest.raises(SpecError, match=message) as caught:
        load_deployment_spec(path)
    assert "\n" not in str(caught.value)


def test_instances_belong_to_policy_fixed(code: Path) -> None:
    with pytest.raises(SpecError, match=r"instances: 3 for 'fn' with scaling policy 'keep-alive'"):
        FunctionSpec(
            name="fn",
            code=str(code),
            instances=3,
            scaling=ScalingSpec(policy="keep-alive", max_instances=4),
        )


# -- the state file ------------------------------------------------------------------------


def test_a_state_file_without_pools_still_loads_and_new_ones_keep_them(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    old = {"faaslab": "faaslab.deployment", "version": 1, "id": "d", "status": "running"}
    old["created_at"] = 1.0  # type: ignore[assignment]
    path.write_text(json.dumps(old))
    assert load_state(path).pools == []
    state = msgspec.convert({**old, "pools": [{"function": "fn", "policy": "keep-alive"}]},
                            DeploymentState)
    write_state(path, state)
    assert load_state(path).pools[0].policy == "keep-alive"


# -- the workload ----------------------------------------------------------------------------


def test_a_trace_workload_is_checked_when_made(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.csv", {"h1": [1, 0, 2]})
    ok = Workload(function="fn", loop="trace", trace=str(trace), trace_functions={"h1": "fn"})
    assert (ok.seconds_per_minute, ok.count, ok.duration_s) == (60.0, None, None)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"trace_functions": {"h1": "fn"}}, "a trace loop needs a trace"),
        ({"trace": str(tmp_path / "nope.csv"), "trace_functions": {"h1": "fn"}}, "not a file"),
        ({"trace": str(trace)}, "trace_functions: a trace loop needs"),
        ({"trace": str(trace), "trace_functions": {"h1": "other"}}, "drives 'fn'"),
        ({"trace": str(trace), "trace_functions": {"h1": "fn"}, "minute_s": 0}, "minute_s: 0"),
        ({"trace": str(trace), "trace_functions": {"h1": "fn"}, "rate": 3.0}, "rate, clients"),
    ]
    for fields, message in cases:
        with pytest.raises(SpecError, match=message):
            Workload(function="fn", loop="trace", **fields)
    with pytest.raises(SpecError, match="only a trace loop"):
        Workload(function="fn", count=3, minute_s=1.0)


def test_an_experiment_file_resolves_its_trace_beside_it(tmp_path: Path, code: Path) -> None:
    write_trace(tmp_path / "t.csv", {"h1": [1, 1]})
    path = tmp_path / "exp.toml"
    path.write_text(
        '[[deployments]]\nname = "a"\n[[deployments.functions]]\nname = "fn"\ncode = "fn"\n'
        'scaling = { policy = "keep-alive", keep_alive_s = 0.3, max_instances = 2 }\n'
        '[[workloads]]\nfunction = "fn"\nloop = "trace"\ntrace = "t.csv"\nminute_s = 1\n'
        "trace_functions = { h1 = \"fn\" }\n"
    )
    spec = load_experiment_spec(path)
    assert spec.workloads[0].trace == str((tmp_path / "t.csv").resolve())
    assert spec.deployments[0].functions[0].scaling.keep_alive_s == 0.3


class FakeDeployment:
    def __init__(self) -> None:
        self.calls = 0

    def instances(self, function: str) -> list[Any]:
        return []

    async def invoke(self, function: str, event: Any, *, timeout: Any, check: bool) -> Invocation:
        self.calls += 1
        return Invocation(
            request_id=str(self.calls),
            function=function,
            instance="fn-0",
            container_id="c",
            is_cold=self.calls == 1,
            begin=1.0,
            end=1.1,
            compute_time_us=100,
            client_send=1.0,
            client_receive=1.2,
            latency_s=0.2,
            cpu_time_us=1234,
            cold_start=self.calls == 1,
        )


@pytest.mark.anyio
async def test_the_trace_loop_makes_every_traced_call_at_its_minute(tmp_path: Path) -> None:
    trace_path = write_trace(tmp_path / "t.csv", {"h1": [3, 0, 2], "h2": [1, 1, 1], "x": [9] * 3})
    trace = load_trace(trace_path, {"h1": "fn", "h2": "fn"})
    workload = Workload(
        function="fn",
        loop="trace",
        trace=str(trace_path),
        trace_functions={"h1": "fn", "h2": "fn"},
        minute_s=0.02,
        start="natural",
    )
    records: list[InvocationRecord] = []
    dep = FakeDeployment()
    driver = WorkloadDriver(
        dep,  # type: ignore[arg-type]
        "a",
        workload,
        0,
        events=[{}],
        sink=records.append,
        clock=RunClock(),
        rng=random.Random(1),
        trace=trace,
        trace_seed=7,
    )
    await driver.run()
    assert dep.calls == len(records) == 8  # h1: 5, h2: 3; the unmapped row is not replayed
    assert sorted(r.trace_function or "" for r in records) == ["h1"] * 5 + ["h2"] * 3
    t0 = driver.info().t_start
    minutes = sorted(int((r.t_scheduled - t0) / 0.02) for r in records)
    assert minutes == [0, 0, 0, 0, 1, 2, 2, 2]
    assert all(r.t_start >= r.t_scheduled for r in records)
    assert [r.cpu_time_us for r in records] == [1234] * 8
    assert sum(bool(r.cold_start) for r in records) == 1


# -- records, pools and the summary ---------------------------------------------------------


def test_records_written_before_cpu_and_cold_start_still_decode() -> None:
    old = (
        b'{"deployment":"a","function":"fn","workload":"w","start":"warm","repetition":0,'
        b'"seq":0,"t_scheduled":0.0,"t_start":0.0,"t_end":0.1}'
    )
    record = decode_record(old)
    assert (record.cpu_time_us, record.cold_start, record.trace_function) == (None, None, None)


def test_pools_move_to_the_run_clock_and_feed_the_summary(tmp_path: Path, code: Path) -> None:
    acct = PoolAccounting()
    acct.instance_started("fn-0", 1000.0)
    acct.call_started("fn-0", 1000.0)
    acct.instance_ready("fn-0", 1001.0)
    acct.call_finished("fn-0", 1001.5)
    acct.instance_stopped("fn-0", 1003.5)
    spec = FunctionSpec(
        name="fn",
        code=str(code),
        memory_mb=128,
        scaling=ScalingSpec(policy="keep-alive", max_instances=2),
    )
    series = pool_series(spec, acct.statistics(1010.0), epoch_s=990.0)
    assert series.alive_timeline == [(10.0, 1), (13.5, 0)]
    assert series.idle_memory_mb_s == pytest.approx(2.0 * 128)
    write_pools(tmp_path / SCALING, [series])
    assert read_pools(tmp_path / SCALING) == {"fn": series}

    def rec(seq: int, cold: bool, cpu: int, error: bool = False) -> InvocationRecord:
        common: dict[str, Any] = {
            "deployment": "a",
            "function": "fn",
            "workload": "w",
            "start": "natural",
            "repetition": 0,
            "seq": seq,
            "t_scheduled": 0.0,
            "t_start": float(seq),
            "t_end": seq + 0.5,
        }
        if error:
            failure = ErrorRecord("platform", "InstanceStartError", "never ready")
            return InvocationRecord(**common, cold_start=cold, error=failure)
        return InvocationRecord(**common, latency_s=0.1, cold_start=cold, cpu_time_us=cpu)

    records = [rec(0, True, 3000), rec(1, False, 1000), rec(2, False, 2000), rec(3, True, 0, True)]
    summary = summarize(
        records,
        experiment="e",
        status="complete",
        pools={("a", "fn"): PoolSeries(**msgspec.structs.asdict(series))},
    )
    (fn,) = summary.functions
    assert (fn.cold_starts, fn.cold_fraction) == (2, pytest.approx(1 / 3))
    assert (fn.policy, fn.max_instances_seen, fn.instances_started) == ("keep-alive", 1, 1)
    assert fn.idle_memory_mb_s == pytest.approx(256.0)
    assert fn.instances_over_time == [(10.0, 1), (13.5, 0)]
    assert (fn.cpu_time_mean_us, fn.cpu_time_max_us, fn.cpu_time_total_us) == (2000.0, 3000, 6000)
    assert (fn.pool_cold_starts, fn.pool_cold_calls) == (1, 1)


# -- CPU time files ----------------------------------------------------------------------------

CID = "ab" * 32


def fake_host(tmp_path: Path, proc_cgroup: str, files: dict[str, str]) -> tuple[Path, Path]:
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "cgroup").write_text(proc_cgroup)
    for relative, text in files.items():
        (cgroup / relative).parent.mkdir(parents=True, exist_ok=True)
        (cgroup / relative).write_text(text)
    return proc, cgroup


@pytest.mark.parametrize(
    ("proc_cgroup", "files", "expected", "version", "microseconds"),
    [
        # this machine: cpu and cpuacct mounted apart
        (f"2:cpuacct:/docker/{CID}\n1:cpu:/docker/{CID}\n0::/\n",
         {f"cpuacct/docker/{CID}/cpuacct.usage": "123456789\n"},
         f"cpuacct/docker/{CID}/cpuacct.usage", 1, 123456),
        # mounted together (most v1 hosts)
        (f"3:cpu,cpuacct:/system.slice/docker-{CID}.scope\n",
         {f"cpu,cpuacct/system.slice/docker-{CID}.scope/cpuacct.usage": "5000\n"},
         f"cpu,cpuacct/system.slice/docker-{CID}.scope/cpuacct.usage", 1, 5),
        # cgroup v2, systemd driver
        (f"0::/system.slice/docker-{CID}.scope\n",
         {f"system.slice/docker-{CID}.scope/cpu.stat":
          "usage_usec 777\nuser_usec 700\nsystem_usec 77\n"},
         f"system.slice/docker-{CID}.scope/cpu.stat", 2, 777),
    ],
)
def test_cpu_files_are_found_on_every_layout(
    tmp_path: Path,
    proc_cgroup: str,
    files: dict[str, str],
    expected: str,
    version: int,
    microseconds: int,
) -> None:
    proc, cgroup = fake_host(tmp_path, proc_cgroup, files)
    found = find_cpu_file(42, proc_root=proc, cgroup_root=cgroup)
    assert (found.path, found.version, found.found_by) == (str(cgroup / expected), version, "proc")
    meter = CpuMeter(found, os.open(found.path, os.O_RDONLY))
    value = meter.read_us()
    meter.close()
    assert value == microseconds
    assert meter.read_us() is None  # closed


def test_cpu_file_search_by_container_id_and_what_was_tried(tmp_path: Path) -> None:
    proc, cgroup = fake_host(
        tmp_path,
        "2:cpuacct:/../outside\n",
        {f"cpuacct/kubepods/pod1/{CID}/cpuacct.usage": "1000\n"},
    )
    found = find_cpu_file(42, container_id=CID, proc_root=proc, cgroup_root=cgroup)
    assert found.found_by == "search"
    with pytest.raises(SamplingError, match="no readable cgroup CPU file for pid 42; tried"):
        find_cpu_file(42, proc_root=proc, cgroup_root=cgroup)
    assert parse_cpu_usage_us(1, b"2500\n") == 2
    with pytest.raises(ValueError, match="no usage_usec"):
        parse_cpu_usage_us(2, b"user_usec 3\n")
