"""What cancellation does to a deployment, and what ``stop`` returns.

    python examples/cancellation.py

1. A workload cut short by a timeout (``anyio.move_on_after``): the calls in
   flight are cancelled, the deployment keeps running, and the next call works.
2. ``stop(path)`` returns the typed :class:`faaslab.MemoryReport` (None with
   sampling off) and writes SeBS's ``memory_stats.json``; a second ``stop``
   returns the same report and writes nothing; leaving ``async with`` after
   ``stop`` does nothing more.
3. A cancelled ``async with`` (here a timeout around the whole block) stops
   the deployment in order under a shielded scope: nothing is left behind.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import anyio

import faaslab

HERE = Path(__file__).resolve().parent


def spec(**fields: object) -> faaslab.DeploymentSpec:
    return faaslab.DeploymentSpec(
        functions=[faaslab.FunctionSpec(name="alloc", code=str(HERE / "functions/alloc"))],
        storage=faaslab.StorageSpec(kind="none"),
        **fields,  # type: ignore[arg-type]
    )


async def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="faaslab-cancel-"))
    async with faaslab.open_deployment(spec(measure_interval_ms=1)) as dep:
        # 1. Cut a workload short: 20 calls of 0.2 s each, given 0.5 s.
        done = 0
        with anyio.move_on_after(0.5) as timeout:
            for _ in range(20):
                await dep.invoke("alloc", {"mb": 8, "hold_s": 0.2})
                done += 1
        print(f"1. cut short: {timeout.cancelled_caught}, {done} of 20 calls done")
        after = await dep.invoke("alloc", {"mb": 1})
        print(f"   the next call works: {after.output}")

        # 2. stop returns the report; a second stop returns the same one.
        report = await dep.stop(out / "memory_stats.json")
        assert report is not None
        stats = json.loads((out / "memory_stats.json").read_text())
        print(f"2. stop: {len(report.instances)} container(s), complete={report.complete}, "
              f"{len(stats) - 1} in memory_stats.json")  # fmt: skip
        again = await dep.stop(out / "again.json")
        print(f"   a second stop returns the same report: {again is report}, "
              f"wrote again.json: {(out / 'again.json').exists()}")  # fmt: skip

    # 3. Cancel the whole block: the deployment is torn down in order.
    deployment_id = ""
    with anyio.move_on_after(5) as timeout:
        async with faaslab.open_deployment(spec()) as dep:
            deployment_id = dep.id
            await anyio.sleep(60)
    # `faaslab ps` lists every deployment that has anything on the engine.
    ps = await anyio.run_process([sys.executable, "-m", "faaslab", "ps"])
    left = deployment_id in ps.stdout.decode()
    print(f"3. cancelled: {timeout.cancelled_caught}; {deployment_id} left on the engine: {left}")


if __name__ == "__main__":
    anyio.run(main)
