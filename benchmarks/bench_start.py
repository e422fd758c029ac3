"""Start time: N instances to all-ready, faaslab vs sequential vs the raw floor.

    python benchmarks/bench_start.py [--sizes 1 4 16] [--repeat 3] [--language nodejs]
    python benchmarks/bench_start.py --swarm [--sizes 1 4 16] [--repeat 3]   # as root

- faaslab: ``open_deployment`` with N instances (concurrent start, /alive polling).
- sequential: the same containers created, started and polled one by one
  (how SeBS's local platform starts them).
- floor: aiodocker create + start of the same containers, all at once, each
  polled until its server answers: what the engine and the runtime cost
  without faaslab.

Every variant uses the same image and container configuration; teardown is
not timed. For Node.js, faaslab's time includes the load check (the function
loaded once in a container of its own before any instance starts). Prints
medians and ratios against the floor measured in this run.

``--swarm`` compares the backends instead: ``open_deployment`` with N
instances on this host's engine (``backend = "docker"``) and on a one-node
Docker Swarm (``backend = "swarm"``: one service per instance, reached
through gateways), interleaved, and prints the swarm/docker ratio. The swarm
is a private engine in a network namespace the benchmark creates (the test
suite's ``swarm_env``; root needed), or an existing one given with
``--swarm-endpoint`` and ``--swarm-address``.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anyio

from _common import function_dir, median, quiet_logs
from faaslab._backend import Backend, Label, open_engine
from faaslab._backend._docker import loopback_port
from faaslab._deployment._open import open_deployment
from faaslab._function._actor import InstanceContext, container_config
from faaslab._runtime import language_runtime
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec, SwarmSpec

SOURCES = {
    "python": ("function.py", "def handler(event):\n    return event\n"),
    "nodejs": ("function.js", "exports.handler = async (event) => event;\n"),
}


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
        image=language_runtime(spec.language).image,
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


async def faaslab_start(
    spec: FunctionSpec,
    n: int,
    *,
    endpoint: str | None = None,
    swarm: SwarmSpec | None = None,
) -> float:
    deployment = DeploymentSpec(
        functions=[
            FunctionSpec(name=spec.name, code=spec.code, instances=n, language=spec.language)
        ],
        stop_grace_s=1,
        storage=StorageSpec(kind="none"),  # instances only: the floor starts no storage
        backend="swarm" if swarm is not None else "docker",
        swarm=swarm or SwarmSpec(),
    )
    started = time.perf_counter()
    async with open_deployment(deployment, endpoint=endpoint):
        elapsed = time.perf_counter() - started
    return elapsed


@contextlib.contextmanager
def private_swarm() -> Iterator[tuple[str, str]]:
    """A one-node swarm in a network namespace of our own: (endpoint, address)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
    from swarm_env import PrivateSwarm  # the test suite's: namespaces, dockerd, teardown

    with PrivateSwarm(1, images=["faaslab/python:3.11"]) as swarm:
        yield swarm.manager.endpoint, swarm.manager.address


async def compare_backends(args: argparse.Namespace, spec: FunctionSpec) -> None:
    with contextlib.ExitStack() as stack:
        if args.swarm_endpoint:
            endpoint, address = args.swarm_endpoint, args.swarm_address
        else:
            endpoint, address = stack.enter_context(private_swarm())
        swarm = SwarmSpec(address=address, publish="gateway")
        print(f"{'N':>3} {'docker s':>9} {'swarm s':>9} {'swarm/docker':>13}")
        await faaslab_start(spec, 1)  # warm both engines' caches
        await faaslab_start(spec, 1, endpoint=endpoint, swarm=swarm)
        for n in args.sizes:
            docker, on_swarm = [], []
            for _ in range(args.repeat):
                docker.append(await faaslab_start(spec, n))
                on_swarm.append(await faaslab_start(spec, n, endpoint=endpoint, swarm=swarm))
            d, w = median(docker), median(on_swarm)
            print(f"{n:>3} {d:>9.3f} {w:>9.3f} {w / d:>13.2f}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--language", choices=sorted(SOURCES), default="python")
    parser.add_argument("--swarm", action="store_true", help="compare docker and swarm backends")
    parser.add_argument("--swarm-endpoint", help="an existing swarm manager (with --swarm)")
    parser.add_argument("--swarm-address", default="127.0.0.1", help="its gateway address")
    args = parser.parse_args()
    quiet_logs()
    entry, source = SOURCES[args.language]
    code = function_dir(source, entry=entry)
    spec = FunctionSpec(name="bench", code=str(code), language=args.language)
    if args.swarm:
        await compare_backends(args, spec)
        return
    print(f"{args.language} ({language_runtime(args.language).image})")
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
