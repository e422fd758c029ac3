"""Start time: N instances to all-ready, faaslab vs sequential vs the raw floor.

    python benchmarks/bench_start.py [--sizes 1 4 16] [--repeat 3]

- faaslab: ``open_deployment`` with N instances (concurrent start, /alive polling).
- sequential: the same containers created, started and polled one by one
  (how SeBS's local platform starts them).
- floor: aiodocker create + start of the same containers, all at once, each
  polled until its server answers: what the engine and the runtime cost
  without faaslab.

Every variant uses the same image and container configuration; teardown is
not timed. Prints medians and ratios against the floor measured in this run.
"""

from __future__ import annotations

import argparse
import secrets
import time

import aiohttp
import anyio

from _common import function_dir, median, quiet_logs
from faaslab._backend import Backend, Label, open_engine
from faaslab._backend._docker import loopback_port
from faaslab._deployment._open import open_deployment
from faaslab._function._actor import InstanceContext, container_config
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec

SOURCE = "def handler(event):\n    return event\n"


async def poll_alive(session: aiohttp.ClientSession, port: int) -> None:
    url = f"http://127.0.0.1:{port}/alive"
    while True:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await anyio.sleep(0.005)


async def raw_start(engine: Backend, spec: FunctionSpec, n: int, *, concurrent: bool) -> float:
    """Create+start n containers directly through aiodocker, poll each until it answers."""
    deployment_id = f"bench-{secrets.token_hex(3)}"
    network = f"faaslab-{deployment_id}"
    network_id = await engine.create_network(network, {Label.DEPLOYMENT: deployment_id})
    ctx = InstanceContext(
        deployment_id=deployment_id,
        network=network,
        image="faaslab/python:3.11",
        start_timeout_s=30,
        stop_grace_s=1,
        remove=True,
    )
    ids: list[str] = []
    try:
        async with aiohttp.ClientSession() as session:

            async def one(i: int) -> None:
                name = f"{spec.name}-{i}"
                config = container_config(spec, name, ctx, 0)
                cid = await engine.create_container(config, name=f"{network}-{name}")
                ids.append(cid)
                await engine.start_container(cid)
                data = await engine.inspect_container(cid)
                assert data is not None
                port = loopback_port(data, 8080)
                assert port is not None
                await poll_alive(session, port)

            started = time.perf_counter()
            if concurrent:
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(one, i)
            else:
                for i in range(n):
                    await one(i)
            return time.perf_counter() - started
    finally:
        async with anyio.create_task_group() as tg:
            for cid in ids:
                tg.start_soon(engine.remove_container, cid)
        await engine.remove_network(network_id)


async def faaslab_start(spec: FunctionSpec, n: int) -> float:
    deployment = DeploymentSpec(
        functions=[FunctionSpec(name=spec.name, code=spec.code, instances=n)],
        stop_grace_s=1,
        storage=StorageSpec(kind="none"),  # instances only: the floor starts no storage
    )
    started = time.perf_counter()
    async with open_deployment(deployment):
        elapsed = time.perf_counter() - started
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    quiet_logs()
    code = function_dir(SOURCE)
    spec = FunctionSpec(name="bench", code=str(code))
    print(
        f"{'N':>3} {'floor s':>9} {'faaslab s':>10} {'sequential s':>13} "
        f"{'faaslab/floor':>14} {'sequential/floor':>17}"
    )
    async with open_engine() as engine:
        await raw_start(engine, spec, 1, concurrent=True)  # warm the engine's caches
        for n in args.sizes:
            floor, ours, sequential = [], [], []
            for _ in range(args.repeat):
                floor.append(await raw_start(engine, spec, n, concurrent=True))
                ours.append(await faaslab_start(spec, n))
                sequential.append(await raw_start(engine, spec, n, concurrent=False))
            f, o, s = median(floor), median(ours), median(sequential)
            print(
                f"{n:>3} {f:>9.3f} {o:>10.3f} {s:>13.3f} {o / f:>14.2f} {s / f:>17.2f}", flush=True
            )


if __name__ == "__main__":
    anyio.run(main)
