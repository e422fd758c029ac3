"""The cost of timing each call's connection and first byte (SeBS's http_* times).

    python benchmarks/bench_http_times.py [--calls 400] [--rounds 6]

One instance of a trivial function; warm calls through two aiohttp sessions
to it, interleaved in rounds: *plain* (aiohttp's own connector) and *timed*
(faaslab's ``TimingConnector`` with an ``HttpTimes`` set per call, as
``Instance.invoke`` does), and, for reference, *traced* (aiohttp's
``TraceConfig`` with the four signals the same times would need). Prints the
p50 of each and the ratios to plain.
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace
from typing import Any

import aiohttp
import anyio

from _common import function_dir, median, quiet_logs
from faaslab._deployment._open import open_deployment
from faaslab._function import HttpTimes, TimingConnector
from faaslab._function._http_times import end_timing, timing
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec

BODY = json.dumps({"payload": "x" * 64}).encode()
HEADERS = {"Content-Type": "application/json"}


def _trace() -> aiohttp.TraceConfig:
    async def stamp(_: Any, context: SimpleNamespace, __: Any) -> None:
        context.trace_request_ctx.append(time.perf_counter())

    trace = aiohttp.TraceConfig()
    for signal in (
        trace.on_request_start,
        trace.on_connection_create_end,
        trace.on_connection_reuseconn,
        trace.on_request_end,
    ):
        signal.append(stamp)
    return trace


async def one(name: str, session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    if name == "timed":
        times = HttpTimes(started)
        token = timing(times)
        try:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                times.first_byte = time.perf_counter()
                await response.read()
        finally:
            end_timing(token)
    elif name == "traced":
        stamps: list[float] = []
        async with session.post(
            url, data=BODY, headers=HEADERS, trace_request_ctx=stamps
        ) as response:
            await response.read()
    else:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            await response.read()
    return time.perf_counter() - started


async def main(calls: int, rounds: int) -> None:
    quiet_logs()
    code = function_dir("def handler(event):\n    return event\n")
    spec = DeploymentSpec(
        functions=[FunctionSpec(name="bench", code=str(code), instances=1)],
        storage=StorageSpec(kind="none"),
    )
    latencies: dict[str, list[float]] = {"plain": [], "timed": [], "traced": []}
    async with open_deployment(spec) as dep:
        url = dep.instances("bench")[0].url
        sessions = {
            "plain": aiohttp.ClientSession(),
            "timed": aiohttp.ClientSession(connector=TimingConnector()),
            "traced": aiohttp.ClientSession(trace_configs=[_trace()]),
        }
        try:
            order = list(sessions)
            for round_ in range(rounds):
                # Rotate the order so drift on a shared machine hits all alike.
                for name in order[round_ % 3 :] + order[: round_ % 3]:
                    for _ in range(calls):
                        latencies[name].append(await one(name, sessions[name], url))
        finally:
            for session in sessions.values():
                await session.close()
    p50 = {name: median(values) * 1e6 for name, values in latencies.items()}
    for name, value in p50.items():
        print(f"{name:>7}  p50 {value:7.0f} µs  ratio to plain {value / p50['plain']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    anyio.run(main, args.calls, args.rounds)
