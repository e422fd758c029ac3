"""Warm invocation latency and throughput: faaslab vs raw aiohttp POSTs.

    python benchmarks/bench_invoke.py [--calls 2000] [--instances 8] [--language nodejs]

One deployment of a trivial function (Python, or Node.js with ``--language
nodejs``: the same echo handler in ``function.js``) with N instances. For concurrency 1
and 8, the same number of warm calls go through ``dep.invoke`` and through
raw aiohttp POSTs to the same containers (one session, one keep-alive
connection per instance, each raw worker bound to its own instance, so both
respect one call at a time per instance). Prints p50/p99 latency, throughput,
the p50 overhead in µs and the throughput ratio, interleaving the two in
rounds so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import collections
import time

import aiohttp
import anyio

from _common import function_dir, percentile, quiet_logs
from faaslab._deployment._actor import Deployment
from faaslab._deployment._open import open_deployment
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec

SOURCES = {
    "python": ("function.py", "def handler(event):\n    return event\n"),
    "nodejs": ("function.js", "exports.handler = async (event) => event;\n"),
}
EVENT = {"payload": "x" * 64, "n": 1}


async def run_faaslab(dep: Deployment, calls: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            t0 = time.perf_counter()
            await dep.invoke("bench", EVENT)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker, calls // concurrency)
    return latencies, time.perf_counter() - started


async def run_raw(
    session: aiohttp.ClientSession, urls: list[str], calls: int, concurrency: int
) -> tuple[list[float], float]:
    import json

    body = json.dumps(EVENT).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []

    # The same placement as faaslab's: each call goes to the free instance
    # that was used least recently, never two calls on one instance at once.
    free = collections.deque(urls)

    async def worker(count: int) -> None:
        for _ in range(count):
            url = free.popleft()
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                json.loads(await response.read())
            latencies.append(time.perf_counter() - t0)
            free.append(url)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker, calls // concurrency)
    return latencies, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--language", choices=sorted(SOURCES), default="python")
    args = parser.parse_args()
    quiet_logs()
    entry, source = SOURCES[args.language]
    code = function_dir(source, entry=entry)
    function = FunctionSpec(
        name="bench", code=str(code), instances=args.instances, language=args.language
    )
    spec = DeploymentSpec(functions=[function], storage=StorageSpec(kind="none"))
    async with (
        open_deployment(spec) as dep,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        urls = [i.url for i in dep.instances("bench")]
        for _ in range(args.instances):  # warm every instance on both paths
            await dep.invoke("bench", EVENT)
        await run_raw(session, urls, args.instances * 10, args.instances)
        print(f"{args.language}: {args.calls} warm calls on {args.instances} instances")
        print(f"{'conc':>4} {'path':>8} {'p50 µs':>8} {'p99 µs':>8} {'calls/s':>9}")
        for concurrency in (1, 8):
            ours: list[float] = []
            raw: list[float] = []
            ours_time = raw_time = 0.0
            per_round = args.calls // args.rounds
            for _ in range(args.rounds):
                lat, took = await run_raw(session, urls, per_round, concurrency)
                raw += lat
                raw_time += took
                lat, took = await run_faaslab(dep, per_round, concurrency)
                ours += lat
                ours_time += took
            for name, lat, took in (("raw", raw, raw_time), ("faaslab", ours, ours_time)):
                print(
                    f"{concurrency:>4} {name:>8} {percentile(lat, 50) * 1e6:>8.0f} "
                    f"{percentile(lat, 99) * 1e6:>8.0f} {len(lat) / took:>9.0f}"
                )
            overhead = (percentile(ours, 50) - percentile(raw, 50)) * 1e6
            ratio = (len(ours) / ours_time) / (len(raw) / raw_time)
            print(
                f"{concurrency:>4} p50 overhead {overhead:.0f} µs; "
                f"throughput faaslab/raw {ratio:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    anyio.run(main)
