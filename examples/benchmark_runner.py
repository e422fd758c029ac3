"""An asyncio benchmark runner on faaslab: two functions, a concurrent workload, CSV on stdout.

    python examples/benchmark_runner.py [--calls 40] [--concurrency 4] > results.csv

stdout carries the CSV only (one row per call); what the deployment did is
counted from ``dep.events()`` and said on stderr at the end. The last call
asks ``alloc`` for more memory than its limit: the call fails with the cause
(an ``error`` row), its instance is replaced, and the events show it
(``InstanceExited``, ``InstanceRestarted``, ``InstanceReady``). faaslab itself
writes nothing on stdout.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

import anyio

import faaslab

HERE = Path(__file__).resolve().parent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per function")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    spec = faaslab.DeploymentSpec(
        functions=[
            faaslab.FunctionSpec(name="echo", code=str(HERE / "functions/echo"), instances=2),
            faaslab.FunctionSpec(
                name="alloc", code=str(HERE / "functions/alloc"), instances=2, memory_mb=256
            ),
        ],
        measure_interval_ms=1,  # per-call memory peaks from 1 ms sampling
        storage=faaslab.StorageSpec(kind="none"),
    )
    writer = csv.writer(sys.stdout)
    writer.writerow(["function", "call", "instance", "is_cold", "latency_ms", "peak_mb", "error"])
    seen: Counter[str] = Counter()
    replaced = anyio.Event()  # set when an instance is ready again after the OOM

    async with faaslab.open_deployment(spec) as dep:
        with dep.events() as events:

            async def watch() -> None:
                async for event in events:  # ends when the deployment stops
                    seen[type(event).__name__] += 1
                    if isinstance(event, faaslab.InstanceReady):
                        replaced.set()

            async def call(function: str, n: int, event: dict[str, object]) -> None:
                try:
                    inv = await dep.invoke(function, event)
                except faaslab.InstanceLost as exc:  # the call killed its instance
                    writer.writerow([function, n, "", "", "", "", str(exc)])
                    return
                peak = inv.memory_peak_bytes
                writer.writerow(
                    [
                        function,
                        n,
                        inv.instance,
                        inv.is_cold,
                        f"{inv.latency_s * 1e3:.3f}",
                        f"{peak / 1e6:.1f}" if peak is not None else "",
                        "",
                    ]
                )

            limit = anyio.Semaphore(args.concurrency)

            async def bounded(function: str, n: int, event: dict[str, object]) -> None:
                async with limit:
                    await call(function, n, event)

            async with anyio.create_task_group() as watcher:
                watcher.start_soon(watch)
                async with anyio.create_task_group() as workload:
                    for n in range(args.calls):
                        workload.start_soon(bounded, "echo", n, {"n": n})
                        workload.start_soon(bounded, "alloc", n, {"mb": 16})
                await call("alloc", args.calls, {"mb": 400})  # over its 256 MB: OOM-killed
                with anyio.fail_after(60):
                    await replaced.wait()  # its replacement is up: the events said so
                report = await dep.stop()  # also ends the events stream
    assert report is not None
    print(
        f"{2 * args.calls + 1} calls; events: {dict(sorted(seen.items()))}; "
        f"{len(report.instances)} containers sampled",
        file=sys.stderr,
    )


if __name__ == "__main__":
    anyio.run(main)
