"""Several deployments in one event loop: each its own containers, network and state.

    python examples/many_deployments.py [--deployments 3]

The deployments start concurrently (one task each, in one task group), are
invoked concurrently, and each stops when its own ``async with`` ends. If
one fails to start, the task group cancels the others, and each removes
what it made before the error reaches ``main``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio

import faaslab

HERE = Path(__file__).resolve().parent


async def run_one(index: int, results: dict[str, str]) -> None:
    spec = faaslab.DeploymentSpec(
        functions=[faaslab.FunctionSpec(name="echo", code=str(HERE / "functions/echo"))],
        storage=faaslab.StorageSpec(kind="none"),
    )
    async with faaslab.open_deployment(spec) as dep:
        calls = [await dep.invoke("echo", {"deployment": index, "n": n}) for n in range(5)]
        cold = sum(inv.is_cold for inv in calls)
        results[dep.id] = (
            f"{len(calls)} calls, {cold} cold, on {dep.instances()[0].container_id[:12]}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, str] = {}
    async with anyio.create_task_group() as tg:
        for index in range(args.deployments):
            tg.start_soon(run_one, index, results)
    for deployment_id, line in sorted(results.items()):
        print(f"{deployment_id}: {line}")


if __name__ == "__main__":
    anyio.run(main)
