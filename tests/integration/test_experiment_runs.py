"""Experiments against the real engine: two memory sizes, failures, refusals, Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import msgspec
import pytest

from faaslab import SpecError
from faaslab._cli._experiments import cmd_run
from faaslab._experiment import (
    ExperimentDeployment,
    ExperimentSpec,
    ExperimentSummary,
    Progress,
    Workload,
    load_experiment_spec,
    read_records,
    read_run_info,
    run_experiment,
)
from faaslab._experiment._plots import write_plots
from faaslab._spec import FunctionSpec

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

Leftovers = Callable[[str], Awaitable[list[str]]]

ALLOC = """
def handler(event):
    block = bytearray(event.get("mb", 1) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"size": len(block)}
"""


def summary_of(results: Path) -> ExperimentSummary:
    return msgspec.json.decode((results / "summary.json").read_bytes(), type=ExperimentSummary)


async def test_two_memory_sizes_cold_and_warm(
    tmp_path: Path,
    deployment_id: str,
    make_function: Callable[..., Path],
    leftovers_of: Leftovers,
) -> None:
    code = make_function("alloc", ALLOC)
    ids = {mb: f"{deployment_id}-{mb}" for mb in (128, 512)}
    spec = ExperimentSpec(
        name="sizes",
        deployments=[
            ExperimentDeployment(
                name=f"mem{mb}",
                deployment_id=ids[mb],
                functions=[FunctionSpec(name="alloc", code=str(code), memory_mb=mb)],
            )
            for mb in (128, 512)
        ],
        workloads=[
            Workload(function="alloc", start="cold", clients=1, count=2, event={"mb": 16}),
            Workload(function="alloc", start="warm", clients=2, count=6, event={"mb": 16}),
        ],
        parallel_deployments=True,  # both sizes at once, in one event loop
    )
    results = tmp_path / "results"
    result = await run_experiment(spec, results)
    assert result.ok, result
    assert (result.records, result.errors) == (16, 0)

    records = list(read_records(results / "invocations.jsonl"))
    assert len(records) == 16
    cold = [r for r in records if r.start == "cold"]
    warm = [r for r in records if r.start == "warm"]
    assert len({r.container_id for r in cold}) == 4  # a fresh container per cold call
    assert all(r.is_cold and (r.container_start_s or 0) > 0 for r in cold)
    assert not any(r.is_cold for r in warm)  # the warm-up calls were discarded
    for r in records:
        assert r.latency_s is not None
        assert r.begin is not None
        assert r.end is not None
        assert r.begin <= r.end
        assert r.t_start <= r.t_end
        assert (r.memory_peak_bytes or 0) > 16 * 1024 * 1024

    summary = summary_of(results)
    assert summary.status == "complete"
    assert [(f.deployment, f.memory_mb) for f in summary.functions] == [
        ("mem128", 128),
        ("mem512", 512),
    ]
    for function in summary.functions:
        assert (function.calls, function.errors) == (8, 0)
        assert (function.cold.calls, function.warm.calls) == (2, 6)
        assert function.cold.latency is not None
        assert function.warm.latency is not None
        assert function.container_start is not None
        assert (function.memory_max_bytes or 0) > 16 * 1024 * 1024
        assert (function.throughput_per_s or 0) > 0

    for mb in (128, 512):
        directory = results / f"mem{mb}"
        stats = json.loads((directory / "memory_stats.json").read_text())
        assert {r.container_id for r in records if r.deployment == f"mem{mb}"} <= set(stats)
        assert (directory / "memory_report.json").is_file()
        samples = (directory / "memory_samples.jsonl").read_text().splitlines()
        assert len(samples) == 3  # the pool instance and two cold ones

    # The directory is reproducible: spec.json names the copied code.
    again = load_experiment_spec(results / "spec.json")
    assert Path(again.deployments[0].functions[0].code) == results / "inputs" / "code" / "alloc"
    assert read_run_info(results).deployments[1].deployment_id == ids[512]

    pytest.importorskip("matplotlib")
    plots = await anyio.to_thread.run_sync(write_plots, results)
    assert sorted(p.name for p in plots) == [
        "latency_cdf.png",
        "memory_mem128.png",
        "memory_mem512.png",
    ]
    for path in plots:
        assert path.read_bytes().startswith(b"\x89PNG")
    for deployment in ids.values():
        assert await leftovers_of(deployment) == []


async def test_a_function_that_always_fails_exits_1_and_a_used_dir_is_refused(
    tmp_path: Path,
    deployment_id: str,
    make_function: Callable[..., Path],
    leftovers_of: Leftovers,
) -> None:
    make_function("broken", "def handler(event):\n    raise ValueError('always')\n")
    experiment = tmp_path / "experiment.toml"
    experiment.write_text(
        f"""
        [[deployments]]
        name = "only"
        deployment_id = "{deployment_id}-f"
        functions = [{{ name = "broken", code = "broken", memory_mb = 64 }}]

        [[workloads]]
        function = "broken"
        clients = 2
        count = 5
        """
    )
    results = tmp_path / "results"
    args = argparse.Namespace(spec=str(experiment), output=str(results), overwrite=False)
    assert await anyio.to_thread.run_sync(cmd_run, args) == 1
    summary = summary_of(results)
    assert (summary.status, summary.calls, summary.errors) == ("complete", 5, 5)
    assert summary.functions[0].error_types == {"ValueError": 5}
    assert (results / "spec.source.toml").read_text() == experiment.read_text()
    assert await leftovers_of(f"{deployment_id}-f") == []

    # The same directory again: refused before anything starts (exit code 2).
    with pytest.raises(SpecError, match="exists and is not empty") as caught:
        await anyio.to_thread.run_sync(cmd_run, args)
    assert caught.value.exit_code == 2


async def test_cancelling_keeps_what_was_recorded(
    tmp_path: Path,
    deployment_id: str,
    make_function: Callable[..., Path],
    leftovers_of: Leftovers,
) -> None:
    code = make_function("alloc", ALLOC)
    spec = ExperimentSpec(
        deployments=[
            ExperimentDeployment(
                name="only",
                deployment_id=deployment_id,
                functions=[FunctionSpec(name="alloc", code=str(code), instances=2)],
            )
        ],
        workloads=[Workload(function="alloc", loop="open", rate=50, count=10_000, start="natural")],
    )
    results = tmp_path / "results"
    with anyio.CancelScope() as scope:

        def stop_after_three(progress: Progress) -> None:
            if progress.calls >= 3:
                scope.cancel()  # as Ctrl-C does to the run's task

        await run_experiment(spec, results, progress=stop_after_three)
    assert scope.cancelled_caught
    records = list(read_records(results / "invocations.jsonl"))
    assert len(records) >= 3
    summary = summary_of(results)
    assert summary.status == "interrupted"
    assert summary.calls == len(records)
    run = read_run_info(results)
    assert run.status == "interrupted"
    assert run.workload_runs[0].stopped == "interrupted"
    assert (results / "only" / "memory_stats.json").is_file()
    assert await leftovers_of(deployment_id) == []


SEBS = Path(__file__).parents[1] / "data" / "sebs"


async def test_a_sebs_benchmark_is_driven_with_its_generated_input(
    tmp_path: Path, deployment_id: str, leftovers_of: Leftovers
) -> None:
    benchmark = SEBS / "900.storage-roundtrip"
    spec = ExperimentSpec(
        deployments=[
            ExperimentDeployment(
                name="sebs",
                deployment_id=deployment_id,
                functions=[FunctionSpec(name="roundtrip", code=str(benchmark), memory_mb=128)],
                data_dir=str(SEBS / "benchmarks-data" / "900.storage-roundtrip"),
            )
        ],
        workloads=[Workload(function="roundtrip", count=3, sebs_size="small")],
    )
    result = await run_experiment(spec, tmp_path / "results")
    assert result.ok, result
    assert result.records == 3
    assert await leftovers_of(deployment_id) == []


#: `faaslab run` without the CLI's wiring: the command's handler, as `main` calls it.
RUN_COMMAND = (
    # SIGINT raising KeyboardInterrupt, as in a terminal (a run started with `&`
    # without job control inherits it ignored, and Python then leaves it so).
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "import argparse, sys; from faaslab._cli._experiments import cmd_run; "
    "sys.exit(cmd_run(argparse.Namespace(spec=sys.argv[1], output=sys.argv[2], overwrite=False)))"
)


async def test_ctrl_c_stops_the_run_cleanly(
    tmp_path: Path, deployment_id: str, make_function: Callable[..., Path], leftovers_of: Leftovers
) -> None:
    make_function("alloc", ALLOC)
    experiment = tmp_path / "experiment.toml"
    experiment.write_text(
        f"""
        [[deployments]]
        name = "only"
        deployment_id = "{deployment_id}"
        storage = {{ kind = "none" }}
        functions = [{{ name = "alloc", code = "alloc" }}]

        [[workloads]]
        function = "alloc"
        loop = "open"
        rate = 20
        duration_s = 100
        """
    )
    results = tmp_path / "results"
    records = results / "invocations.jsonl"
    process = await anyio.open_process(
        [sys.executable, "-c", RUN_COMMAND, str(experiment), str(results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    async with process:
        deadline = time.monotonic() + 60
        # Wait for a first record: the deployment is up and calls are flowing.
        while not (records.exists() and records.stat().st_size) and process.returncode is None:
            assert time.monotonic() < deadline, "no record within 60 s"
            await anyio.sleep(0.05)
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(60):
            await process.wait()
        assert process.stderr is not None
        stderr = b"".join([chunk async for chunk in process.stderr]).decode()
    assert process.returncode == 130, stderr
    assert "interrupted: the records so far" in stderr
    assert summary_of(results).status == "interrupted"
    assert summary_of(results).calls == len(list(read_records(records))) >= 1
    assert await leftovers_of(deployment_id) == []
