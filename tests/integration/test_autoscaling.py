"""Scaling policies against the real engine: instances on demand, idle ones stopped,
the state file and events as they come and go, cancellation, stop, CPU time per call."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest

from faaslab import FaaslabError
from faaslab._deployment import open_deployment
from faaslab._messages import DeploymentEvent
from faaslab._spec import DeploymentSpec, FunctionSpec, ScalingSpec, StorageSpec

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

WORK = """
import time

def handler(event):
    end = time.process_time() + event.get("burn_s", 0)
    while time.process_time() < end:
        pass
    time.sleep(event.get("sleep_s", 0))
    return {"ok": True}
"""


def keep_alive_spec(
    deployment_id: str, code: Path, *, keep_alive_s: float, max_instances: int, **options: object
) -> DeploymentSpec:
    function = FunctionSpec(
        name="fn",
        code=str(code),
        scaling=ScalingSpec(
            policy="keep-alive", keep_alive_s=keep_alive_s, max_instances=max_instances
        ),
    )
    options.setdefault("storage", StorageSpec(kind="none"))
    return DeploymentSpec(functions=[function], deployment_id=deployment_id, **options)  # type: ignore[arg-type]


async def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Wait (bounded) for a condition on the deployment's own state, checked every 50 ms."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - the state has no event to wait on
            await anyio.sleep(0.05)


def tags(events: list[DeploymentEvent]) -> list[str]:
    return [str(e.__struct_config__.tag) for e in events]


@pytest.mark.usefixtures("nothing_left")
async def test_a_burst_scales_from_zero_to_the_limit_and_back_to_zero(
    tmp_path: Path, deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("work", WORK)
    state_path = tmp_path / "out.json"
    spec = keep_alive_spec(
        deployment_id, code, keep_alive_s=1.0, max_instances=3, measure_interval_ms=1
    )
    seen: list[DeploymentEvent] = []
    async with open_deployment(spec, state_path=state_path) as dep:
        assert dep.instances() == []  # scale from zero: nothing runs before a call
        assert json.loads(state_path.read_text())["functions"] == []
        events = dep.events()
        results = []

        async def call() -> None:
            results.append(await dep.invoke("fn", {"sleep_s": 0.5}))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(call)
        # Three cold starts at the limit; the other three calls queued for them.
        assert sorted(r.cold_start for r in results) == [False] * 3 + [True] * 3
        assert len({r.container_id for r in results}) == 3
        assert sum(r.is_cold for r in results) == 3
        stats = dep.scaling_statistics()["fn"]
        assert (stats.starts, stats.cold_starts, stats.max_alive) == (3, 3, 3)
        # The state file lists the instances while they live ...
        await wait_until(lambda: len(json.loads(state_path.read_text())["functions"]) == 3)
        # ... and the pool stops every one of them after its keep-alive.
        await wait_until(lambda: dep.scaling_statistics()["fn"].alive == 0)
        assert dep.instances() == []
        await wait_until(lambda: json.loads(state_path.read_text())["functions"] == [])
        pools = json.loads(state_path.read_text())["pools"]
        assert pools[0]["policy"] == "keep-alive"
        assert (pools[0]["stops"], pools[0]["max_alive"]) == (3, 3)
        again = await dep.invoke("fn", {})
        assert again.cold_start
        assert again.instance == "fn-3"  # a new position, a new container
        with events:
            while True:
                try:
                    seen.append(events.receive_nowait())
                except anyio.WouldBlock:
                    break
        report = await dep.stop(tmp_path / "memory_stats.json")
    assert tags(seen).count("instance.stopping") == 3
    assert tags(seen).count("instance.ready") == 4
    assert report is not None
    assert len(report.instances) == 4  # every instance was sampled, also the stopped ones
    assert all(i.samples > 0 for i in report.instances)
    assert json.loads(state_path.read_text())["status"] == "stopped"


@pytest.mark.usefixtures("nothing_left")
async def test_calls_cancelled_while_their_instances_start_leave_the_pool_whole(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("work", WORK)
    spec = keep_alive_spec(deployment_id, code, keep_alive_s=0.5, max_instances=2)
    async with open_deployment(spec) as dep:
        with anyio.move_on_after(0.2):  # well before an instance can answer
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(dep.invoke, "fn", {})
        statistics = dep.statistics().functions[0]
        assert statistics.queued == 0
        # The instances started for them come up, idle, and go.
        await wait_until(lambda: dep.scaling_statistics()["fn"].stops == 2)
        assert dep.scaling_statistics()["fn"].alive == 0
        # The pool still serves: nothing was left holding a place.
        answers = []

        async def call() -> None:
            answers.append(await dep.invoke("fn", {}))

        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(call)
        assert len(answers) == 2
        assert dep.scaling_statistics()["fn"].max_alive <= 2


@pytest.mark.usefixtures("nothing_left")
async def test_stop_while_a_call_waits_for_its_cold_start(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("work", WORK)
    spec = keep_alive_spec(deployment_id, code, keep_alive_s=30, max_instances=1)
    errors: list[BaseException] = []
    async with open_deployment(spec) as dep:

        async def call() -> None:
            try:
                await dep.invoke("fn", {})
            except FaaslabError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            tg.start_soon(call)  # queued behind the first
            await wait_until(lambda: dep.scaling_statistics()["fn"].starts == 1)
            await dep.stop()
    # Both were told: the first waited for its instance to start, the second in the queue.
    assert len(errors) == 2
    assert all("is stopping" in str(e) for e in errors)


async def test_cpu_time_per_call_is_the_instance_cgroup_s(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("work", WORK)
    spec = keep_alive_spec(deployment_id, code, keep_alive_s=30, max_instances=1)
    async with open_deployment(spec) as dep:
        burn = await dep.invoke("fn", {"burn_s": 0.2})
        rest = await dep.invoke("fn", {"sleep_s": 0.2})
    assert burn.cpu_time_us is not None
    assert rest.cpu_time_us is not None
    # The handler's own CPU time is a floor; the runtime's share and a loaded
    # machine add to it, but a sleeping call uses a small fraction of it.
    assert burn.cpu_time_us >= 190_000
    assert rest.cpu_time_us < burn.cpu_time_us / 4
    assert burn.compute_time_us >= 190_000


async def test_fixed_pools_are_today_s(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("work", WORK)
    spec = DeploymentSpec(
        functions=[FunctionSpec(name="fn", code=str(code), instances=2)],
        deployment_id=deployment_id,
        storage=StorageSpec(kind="none"),
    )
    async with open_deployment(spec) as dep:
        assert len(dep.instances()) == 2  # started with the deployment
        first = [await dep.invoke("fn", {}) for _ in range(4)]
        stats = dep.scaling_statistics()["fn"]
        state = dep.state()
    assert [i.instance for i in first] == ["fn-0", "fn-1", "fn-0", "fn-1"]  # spread evenly
    assert not any(i.cold_start for i in first)  # no call waited for a start
    assert [i.is_cold for i in first] == [True, True, False, False]  # the runtime's first calls
    assert (stats.starts, stats.stops, stats.cold_starts) == (2, 0, 0)
    assert msgspec.to_builtins(state.pools[0])["policy"] == "fixed"


@pytest.mark.usefixtures("nothing_left")
async def test_many_calls_at_once_pack_onto_instances_up_to_their_concurrency(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("work", WORK)
    function = FunctionSpec(
        name="fn",
        code=str(code),
        concurrency=2,
        scaling=ScalingSpec(policy="keep-alive", keep_alive_s=30, max_instances=2),
    )
    spec = DeploymentSpec(
        functions=[function], deployment_id=deployment_id, storage=StorageSpec(kind="none")
    )
    async with open_deployment(spec) as dep:
        results = []

        async def call() -> None:
            results.append(await dep.invoke("fn", {"sleep_s": 0.3}))

        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(call)
        stats = dep.scaling_statistics()["fn"]
    assert len(results) == 12
    # Two instances, each given two calls while it started: four waited for a start.
    assert (stats.starts, stats.cold_starts, stats.cold_calls) == (2, 2, 4)
    assert sum(r.cold_start for r in results) == 4
    assert {r.instance for r in results} == {"fn-0", "fn-1"}
    assert stats.max_alive == 2
    # Never more than `concurrency` calls at once on an instance (the handlers' own times).
    for name in ("fn-0", "fn-1"):
        edges = sorted(
            [(r.begin, 1) for r in results if r.instance == name]
            + [(r.end, -1) for r in results if r.instance == name]
        )
        at_once = most = 0
        for _, step in edges:
            at_once += step
            most = max(most, at_once)
        assert most == 2, name
