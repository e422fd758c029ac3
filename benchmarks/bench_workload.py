"""Experiment workloads: open-loop generator accuracy, and cold starts vs `docker run`.

    python benchmarks/bench_workload.py [--rates 200 1000] [--seconds 5] [--cold 20]

1. Open loop. For each rate R, an experiment drives a trivial function (4
   warm instances) with Poisson arrivals at R/s for ``--seconds`` through
   ``run_experiment`` (records written as in any run). Per rate it prints
   the rate the sampled schedule itself has, the dispatch rate achieved, the
   completion rate, and the lateness of each dispatch behind its scheduled
   arrival (t_start - t_scheduled: p50, p99, max). Baseline, same run: the
   same driver and schedule against a no-op call that returns at once (the
   event loop's own timer resolution and scheduling), as ratios.

2. Cold starts. An experiment of ``--cold`` cold invocations, one at a time
   (clients = 1): each creates a fresh container, waits until it answers,
   sends one event from the host, then stops and removes it. Baselines on
   the same image, same code mount, same memory limit, measured in this run:
   - `docker run --rm` (the docker CLI): a container whose command starts
     the runtime in-process, sends it one event over its own loopback and
     exits; wall time of the CLI, i.e. create, start, answer, exit, removal;
   - the same container through aiodocker: create -> start -> wait for exit
     (the floor of create-to-answer), then removal timed apart.
   Compared: faaslab's create-to-answer against aiodocker's create-to-exit,
   and faaslab's whole step (create to the next step's start, removal
   included) against `docker run --rm`.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))

import itertools

from _common import function_dir, median, percentile, quiet_logs
from faaslab._backend import Label
from faaslab._backend._docker import open_engine
from faaslab._experiment import (
    ExperimentDeployment,
    ExperimentSpec,
    InvocationRecord,
    Workload,
    read_records,
    run_experiment,
)
from faaslab._experiment._driver import RunClock, WorkloadDriver
from faaslab._function._invocation import Invocation
from faaslab._spec import FunctionSpec, StorageSpec

SOURCE = "def handler(event):\n    return {}\n"
IMAGE = "faaslab/python:3.11"
MEMORY_MB = 256
#: Starts the runtime in-process, sends it one event over loopback, prints the answer.
ONE_REQUEST = """
import sys, threading, urllib.request
from pathlib import Path
sys.path.insert(0, "/opt/faaslab")
import server
runtime = server.Runtime(server.load_handler(Path("/function")), "bench")
httpd = server.RuntimeServer(("127.0.0.1", 0), runtime)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{httpd.server_address[1]}/"
request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(request).read().decode())
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


# -- open loop -------------------------------------------------------------------


class NoOpDeployment:
    """Answers at once: what the generator achieves with nothing to wait for."""

    def instances(self, function: str) -> list[Any]:
        return []

    async def invoke(
        self, function: str, event: Mapping[str, Any], *, timeout: float | None, check: bool
    ) -> Invocation:
        return Invocation(
            request_id="",
            function=function,
            instance="noop",
            container_id="",
            is_cold=False,
            begin=0.0,
            end=0.0,
            compute_time_us=0,
            client_send=0.0,
            client_receive=0.0,
            latency_s=0.0,
        )

    @asynccontextmanager
    async def open_cold_instance(self, function: str) -> AsyncIterator[Any]:
        yield None


def loop_figures(records: list[InvocationRecord], rate: float, seconds: float) -> dict[str, float]:
    records = sorted(records, key=lambda r: r.t_scheduled)
    lateness = [r.t_start - r.t_scheduled for r in records]
    starts = sorted(r.t_start for r in records)
    first = starts[0]
    scheduled = [r.t_scheduled - records[0].t_scheduled for r in records]
    return {
        "n": len(records),
        "schedule_rate": (len(records) - 1) / scheduled[-1],
        "dispatch_rate": (len(records) - 1) / (starts[-1] - first),
        "done_rate": sum(r.ok for r in records) / (max(r.t_end for r in records) - first),
        "late_p50": percentile(lateness, 50),
        "late_p99": percentile(lateness, 99),
        "late_max": max(lateness),
        "errors": sum(not r.ok for r in records),
    }


async def noop_loop(rate: float, seconds: float, seed: str) -> dict[str, float]:
    records: list[InvocationRecord] = []
    workload = Workload(
        function="fn",
        loop="open",
        rate=rate,
        duration_s=seconds,
        start="natural",
        max_in_flight=10_000,
    )
    driver = WorkloadDriver(
        NoOpDeployment(),  # type: ignore[arg-type]
        "noop",
        workload,
        0,
        events=[{}],
        sink=records.append,
        clock=RunClock(),
        rng=random.Random(seed),
    )
    await driver.run()
    return loop_figures(records, rate, seconds)


async def faaslab_loop(code: Path, rate: float, seconds: float, seed: int) -> dict[str, float]:
    spec = ExperimentSpec(
        name="open-loop",
        seed=seed,
        deployments=[
            ExperimentDeployment(
                name="trivial",
                functions=[FunctionSpec(name="fn", code=str(code), instances=4)],
                storage=StorageSpec(kind="none"),
            )
        ],
        workloads=[
            Workload(
                function="fn",
                loop="open",
                rate=rate,
                duration_s=seconds,
                max_in_flight=256,
                label="open",
            )
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = await run_experiment(spec, Path(tmp) / "results")
        records = list(read_records(Path(tmp) / "results" / "invocations.jsonl"))
    figures = loop_figures(records, rate, seconds)
    figures["dropped"] = result.summary.dropped
    return figures


async def open_loop(code: Path, rates: list[float], seconds: float) -> None:
    print(f"== open loop: Poisson arrivals for {seconds:g} s, trivial function, 4 warm instances")
    print(
        f"{'rate/s':>7} {'variant':<8} {'calls':>6} {'sched/s':>8} {'dispatch/s':>10} "
        f"{'done/s':>8} {'late p50 ms':>11} {'p99 ms':>8} {'max ms':>8} {'dropped':>7}"
    )
    for rate in rates:
        seed = 7
        base = await noop_loop(rate, seconds, f"{seed}/trivial/open/0")
        ours = await faaslab_loop(code, rate, seconds, seed)
        for name, f in (("no-op", base), ("faaslab", ours)):
            print(
                f"{rate:>7g} {name:<8} {f['n']:>6.0f} {f['schedule_rate']:>8.1f} "
                f"{f['dispatch_rate']:>10.1f} {f['done_rate']:>8.1f} {ms(f['late_p50']):>11} "
                f"{ms(f['late_p99']):>8} {ms(f['late_max']):>8} {f.get('dropped', 0):>7.0f}"
            )
        print(
            f"{'':>7} ratios: dispatch/requested {ours['dispatch_rate'] / rate:.3f}, "
            f"dispatch/schedule {ours['dispatch_rate'] / ours['schedule_rate']:.3f}, "
            f"late p99 faaslab/no-op {ours['late_p99'] / max(base['late_p99'], 1e-9):.1f}",
            flush=True,
        )


# -- cold starts -------------------------------------------------------------------


async def faaslab_cold(code: Path, n: int) -> list[InvocationRecord]:
    spec = ExperimentSpec(
        name="cold",
        deployments=[
            ExperimentDeployment(
                name="cold",
                functions=[FunctionSpec(name="fn", code=str(code), memory_mb=MEMORY_MB)],
                storage=StorageSpec(kind="none"),
                stop_grace_s=1,
            )
        ],
        workloads=[Workload(function="fn", start="cold", clients=1, count=n)],
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = await run_experiment(spec, Path(tmp) / "results")
        assert result.ok, result
        return sorted(
            read_records(Path(tmp) / "results" / "invocations.jsonl"), key=lambda r: r.seq
        )


def docker_run_args(code: Path, label: str) -> list[str]:
    return [
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        f"{MEMORY_MB}m",
        "--label",
        f"{Label.DEPLOYMENT}={label}",
        "-v",
        f"{code}:/function/function:ro",
        "--entrypoint",
        "python3",
        IMAGE,
        "-c",
        ONE_REQUEST,
    ]


async def docker_cli_runs(code: Path, n: int) -> list[float]:
    label = f"bench-{secrets.token_hex(3)}"
    times = []
    for _ in range(n):
        started = time.perf_counter()
        result = await anyio.run_process(docker_run_args(code, label), check=True)
        times.append(time.perf_counter() - started)
        assert b'"is_cold":true' in result.stdout, result.stdout
    return times


async def aiodocker_runs(code: Path, n: int) -> tuple[list[float], list[float]]:
    """create -> start -> wait for exit, and removal, of the same one-request container."""
    label = f"bench-{secrets.token_hex(3)}"
    config = {
        "Image": IMAGE,
        "Entrypoint": ["python3", "-c", ONE_REQUEST],
        "Labels": {Label.DEPLOYMENT: label},
        "HostConfig": {
            "Binds": [f"{code}:/function/function:ro"],
            "NetworkMode": "none",
            "Memory": MEMORY_MB * 1024 * 1024,
        },
    }
    runs, removals = [], []
    async with open_engine() as engine:
        for _ in range(n):
            started = time.perf_counter()
            container = await engine.client.containers.create(config)
            try:
                await container.start()
                status = await container.wait()
                runs.append(time.perf_counter() - started)
                assert status.get("StatusCode") == 0, status
            finally:
                removing = time.perf_counter()
                await container.delete(force=True)
                removals.append(time.perf_counter() - removing)
    return runs, removals


async def cold_starts(code: Path, n: int) -> None:
    print(f"\n== cold starts: {n} invocations, one at a time, {IMAGE}, {MEMORY_MB} MB")
    records = await faaslab_cold(code, n)
    start = [r.container_start_s or 0.0 for r in records]
    call = [r.latency_s or 0.0 for r in records]
    to_answer = [r.t_end - r.t_start for r in records]
    # One client: the next step starts when this one's container is gone.
    step = [b.t_start - a.t_start for a, b in itertools.pairwise(records)]
    cli = await docker_cli_runs(code, n)
    raw, removal = await aiodocker_runs(code, n)
    rows = [
        ("faaslab create -> ready", start),
        ("faaslab ready -> answer (the call)", call),
        ("faaslab create -> answer", to_answer),
        ("faaslab whole step (removal incl.)", step),
        ("aiodocker create -> exit (1 request)", raw),
        ("aiodocker removal", removal),
        ("docker run --rm (CLI, 1 request)", cli),
    ]
    print(f"{'':<38} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}")
    for name, values in rows:
        print(
            f"{name:<38} {ms(median(values)):>10} {ms(percentile(values, 90)):>8} "
            f"{ms(min(values)):>8}"
        )
    print(
        f"ratios (medians): faaslab create->answer / aiodocker create->exit "
        f"{median(to_answer) / median(raw):.2f}; faaslab whole step / docker run --rm "
        f"{median(step) / median(cli):.2f}; faaslab whole step / (aiodocker run + removal) "
        f"{median(step) / (median(raw) + median(removal)):.2f}"
    )
    print(f"stdev of faaslab create->answer: {statistics.pstdev(to_answer) * 1000:.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 1000.0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cold", type=int, default=20)
    args = parser.parse_args()
    quiet_logs()
    code = function_dir(SOURCE)
    await open_loop(code, args.rates, args.seconds)
    await cold_starts(code, args.cold)


if __name__ == "__main__":
    anyio.run(main)
