"""Scaling: scale-up latency from zero under a burst, and the host CPU the policy costs.

    python benchmarks/bench_scaling.py [--sizes 1 4 8] [--repeat 3] [--calls 2000]

1. Scale-up. A keep-alive pool at zero instances (``max_instances`` = N)
   gets a burst of N concurrent calls: the time until every call has
   answered, and until N instances were ready. Baseline in the same run: N
   concurrent cold creations of the same function (``open_cold_instance``:
   create, start, /alive, then one call each), i.e. the same containers
   without the pool. The ratio is the pool's price for starting on demand.
   Before each measurement the pool is back at zero (keep-alive 0.5 s), so
   no teardown runs beside it; the two alternate in order.
2. Policy CPU, in isolation. A pool driven without Docker (fake instances):
   the CPU per call of the pool's bookkeeping and its policy (admit, decide,
   on_call, on_idle, accounting) for each policy and pool size.
3. Policy CPU, in a real run. The faaslab process's CPU per warm call at
   concurrency 8 on 8 warm instances, under ``fixed`` and under
   ``keep-alive`` (8 instances kept with ``min_instances``), interleaved:
   the policy's share of a real invocation's host CPU.
"""

from __future__ import annotations

import argparse
import time
from typing import cast

import anyio

from _common import function_dir, median, quiet_logs
from faaslab._deployment import Deployment, open_deployment
from faaslab._deployment._pool import FunctionPool
from faaslab._function import Instance, InstanceState, Lifecycle
from faaslab._spec import DeploymentSpec, FunctionSpec, ScalingSpec, StorageSpec

SOURCE = "def handler(event):\n    return event\n"


def deployment_spec(code: str, scaling: ScalingSpec, instances: int = 1) -> DeploymentSpec:
    return DeploymentSpec(
        functions=[FunctionSpec(name="bench", code=code, instances=instances, scaling=scaling)],
        stop_grace_s=1,
        storage=StorageSpec(kind="none"),
    )


async def burst(dep: Deployment, n: int) -> tuple[float, float]:
    """N calls at once on a pool at zero: (all answered, N instances ready) in seconds."""
    ready_at: list[float] = []
    started = time.perf_counter()

    async def call() -> None:
        await dep.invoke("bench", {})
        ready_at.append(time.perf_counter() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(call)
    stats = dep.scaling_statistics()["bench"]
    assert stats.max_alive <= n
    return time.perf_counter() - started, max(ready_at)


async def cold_creations(dep: Deployment, n: int) -> float:
    """N concurrent fresh instances, created, started and called once each: the time
    until the last call answered (their teardown after it is not counted)."""
    answered: list[float] = []
    started = time.perf_counter()

    async def one() -> None:
        async with dep.open_cold_instance("bench") as instance:
            await dep.invoke_on(instance, {})
            answered.append(time.perf_counter() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return max(answered)


async def wait_for_zero(dep: Deployment) -> None:
    with anyio.fail_after(60):
        while dep.scaling_statistics()["bench"].alive:  # noqa: ASYNC110 - state, no event
            await anyio.sleep(0.05)


async def scale_up(code: str, sizes: list[int], repeat: int) -> None:
    print("1. scale-up from zero under a burst of N calls (median of", repeat, "runs)")
    print(f"{'N':>3} {'cold creations s':>17} {'burst s':>8} {'burst / creations':>18}")
    baseline = deployment_spec(code, ScalingSpec())
    for n in sizes:
        scaling = ScalingSpec(policy="keep-alive", keep_alive_s=0.5, max_instances=n)
        async with open_deployment(baseline) as fixed, open_deployment(
            deployment_spec(code, scaling)
        ) as pool:
            creations, bursts = [], []
            for rep in range(repeat):
                # Nothing else on the engine while either is timed: the pool's
                # instances have scaled back to zero (the cold ones are removed
                # inside cold_creations); the order alternates against drift.
                for which in ("creations", "burst") if rep % 2 == 0 else ("burst", "creations"):
                    await wait_for_zero(pool)
                    if which == "creations":
                        creations.append(await cold_creations(fixed, n))
                    else:
                        bursts.append((await burst(pool, n))[0])
            c, b = median(creations), median(bursts)
            print(f"{n:>3} {c:>17.3f} {b:>8.3f} {b / c:>18.2f}", flush=True)


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class _FakeInstance:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.in_flight = 0
        self.lifecycle = Lifecycle()
        self.lifecycle.to(InstanceState.STARTING)
        self.lifecycle.to(InstanceState.READY)


async def policy_cpu(code: str, calls: int) -> dict[tuple[str, int], float]:
    """CPU µs per call of the pool and its policy alone, at 1 call in flight per instance."""
    results: dict[tuple[str, int], float] = {}
    scalings = {
        "fixed": lambda n: ScalingSpec(),
        "keep-alive": lambda n: ScalingSpec(
            policy="keep-alive", keep_alive_s=600, min_instances=n, max_instances=n
        ),
        "hybrid-histogram": lambda n: ScalingSpec(
            policy="hybrid-histogram", min_instances=n, max_instances=n
        ),
    }
    for name, make in scalings.items():
        for size in (1, 8, 32):
            instances = size if name == "fixed" else 1
            spec = FunctionSpec(name="bench", code=code, instances=instances, scaling=make(size))
            clock = _Clock()
            pool = FunctionPool(
                spec,
                clock=clock,
                start_slot=lambda slot: None,
                stop_slot=lambda slot: None,
                queue_timeout_s=60,
                start_timeout_s=30,
                restart_window_s=60,
            )
            slots = pool.deploy()
            for slot in slots:
                slot.instance = cast(Instance, _FakeInstance(slot.name))
                pool.instance_up(slot)
            pool.run()
            # Every instance busy but one: a realistic choice among `size`.
            held = [await pool.acquire() for _ in range(size - 1)]
            cpu = time.process_time()
            for _ in range(calls):
                clock.t += 0.001
                call = await pool.acquire()
                await pool.ready_instance(call)
                pool.finish(call)
            results[(name, size)] = (time.process_time() - cpu) / calls * 1e6
            for call in held:
                pool.finish(call)
    return results


async def warm_cpu(dep: Deployment, calls: int, concurrency: int) -> float:
    """The faaslab process's CPU µs per warm call at ``concurrency``."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await dep.invoke("bench", {})

    cpu = time.process_time()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker, calls // concurrency)
    return (time.process_time() - cpu) / calls * 1e6


async def real_cpu(code: str, calls: int, rounds: int = 3) -> tuple[float, float]:
    fixed = deployment_spec(code, ScalingSpec(), instances=8)
    keep = deployment_spec(
        code,
        ScalingSpec(policy="keep-alive", keep_alive_s=600, min_instances=8, max_instances=8),
    )
    per: dict[str, list[float]] = {"fixed": [], "keep-alive": []}
    async with open_deployment(fixed) as a, open_deployment(keep) as b:
        for dep in (a, b):
            await warm_cpu(dep, 200, 8)  # warm both pools
        for _ in range(rounds):
            per["fixed"].append(await warm_cpu(a, calls, 8))
            per["keep-alive"].append(await warm_cpu(b, calls, 8))
    return median(per["fixed"]), median(per["keep-alive"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    quiet_logs()
    code = str(function_dir(SOURCE))
    await scale_up(code, args.sizes, args.repeat)

    print("\n2. the pool and its policy alone: CPU per call (fake instances, no I/O)")
    isolated = await policy_cpu(code, 20_000)
    print(f"{'policy':<17} {'instances':>9} {'CPU µs/call':>12}")
    for (name, size), value in isolated.items():
        print(f"{name:<17} {size:>9} {value:>12.1f}")

    print(f"\n3. a real run: faaslab's CPU per warm call, {args.calls} calls at concurrency 8")
    fixed, keep = await real_cpu(code, args.calls)
    pool_share = isolated[("keep-alive", 8)] / keep
    print(f"{'fixed':<12} {fixed:>8.1f} µs/call")
    print(f"{'keep-alive':<12} {keep:>8.1f} µs/call   keep-alive / fixed = {keep / fixed:.2f}")
    print(
        f"the pool and keep-alive policy (8 instances): {isolated[('keep-alive', 8)]:.1f} µs "
        f"= {pool_share * 100:.1f} % of a warm call's host CPU"
    )


if __name__ == "__main__":
    anyio.run(main)
