"""The crash policy against the real engine: the function's fault vs the platform's."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from pathlib import Path

import anyio
import pytest

import faaslab
from faaslab._deployment._open import open_deployment
from faaslab._messages import DeploymentEvent, InstanceExited, InstanceRestarted
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

FAULTY = """
import os, threading

def handler(event):
    if event.get("allocate_mb"):
        block = bytearray(event["allocate_mb"] * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
    if event.get("exit"):
        os._exit(event["exit"])
    if event.get("crash_later"):
        # The call returns; the instance dies while idle, as a crashing thread would.
        threading.Timer(event["crash_later"], lambda: os._exit(5)).start()
    return {"pid": os.getpid()}
"""


def spec_for(deployment_id: str, function: FunctionSpec, **options: object) -> DeploymentSpec:
    return DeploymentSpec(
        functions=[function],
        deployment_id=deployment_id,
        storage=StorageSpec(kind="none"),
        **options,  # type: ignore[arg-type]
    )


async def next_event(
    events: AsyncIterable[DeploymentEvent], kind: type[DeploymentEvent], timeout: float = 60
) -> DeploymentEvent:
    with anyio.fail_after(timeout):
        async for event in events:
            if isinstance(event, kind):
                return event
    pytest.fail(f"the event stream ended before a {kind.__name__}")


@pytest.mark.usefixtures("nothing_left")
async def test_ten_oom_calls_in_a_row_then_a_normal_call_succeeds(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("faulty", FAULTY)
    function = FunctionSpec(name="faulty", code=str(code), instances=2, memory_mb=64)
    async with open_deployment(spec_for(deployment_id, function)) as dep:
        served_meanwhile: list[str] = []
        with dep.events() as events:
            exits: list[InstanceExited] = []
            restarts: list[InstanceRestarted] = []
            all_replaced = anyio.Event()

            async def collect() -> None:
                async for event in events:
                    if isinstance(event, InstanceExited):
                        exits.append(event)
                    elif isinstance(event, InstanceRestarted):
                        restarts.append(event)
                        if len(restarts) == 10:
                            all_replaced.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(collect)
                for _ in range(10):
                    with pytest.raises(faaslab.InstanceLost) as lost:
                        await dep.invoke("faulty", {"allocate_mb": 200})
                    assert lost.value.oom_killed
                    assert "OOM-killed" in str(lost.value)
                    assert "memory limit of 64 MB" in str(lost.value)
                    # Meanwhile the other instance keeps serving normal calls.
                    served_meanwhile.append((await dep.invoke("faulty", {})).instance)
                # The call learns of a death before its supervisor does: wait for the tenth.
                with anyio.fail_after(60):
                    await all_replaced.wait()
                ok = await dep.invoke("faulty", {})
                assert ok.ok
                tg.cancel_scope.cancel()
        stats = dep.statistics().functions[0]
        assert not stats.failed
        assert sum(i.restarts for i in stats.instances) == 10
        assert all(i.crash_streak == 0 for i in stats.instances)  # none counted as a crash
        assert sum(i.ends.get("invocation", 0) for i in stats.instances) == 10
        assert len(served_meanwhile) == 10
        ooms = [e for e in exits if e.oom_killed]
        assert len(ooms) == 10
        assert all(e.during_invocation and e.cause == "invocation" for e in ooms)
        assert all(r.backoff_s == 0.0 and "OOM-killed" in r.reason for r in restarts)


@pytest.mark.usefixtures("nothing_left")
async def test_a_death_during_a_call_reports_its_exit_code_and_never_fails_the_function(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("faulty", FAULTY)
    function = FunctionSpec(name="faulty", code=str(code))
    # Even with the strictest user bound: deaths during calls never count.
    async with open_deployment(spec_for(deployment_id, function, max_restarts=0)) as dep:
        for _ in range(3):
            with pytest.raises(faaslab.InstanceLost, match="exited with code 3"):
                await dep.invoke("faulty", {"exit": 3})
        assert (await dep.invoke("faulty", {})).is_cold  # a fresh instance
        assert not dep.statistics().functions[0].failed


@pytest.mark.usefixtures("nothing_left")
async def test_idle_crashes_back_off_and_say_when_they_retry(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("faulty", FAULTY)
    function = FunctionSpec(name="faulty", code=str(code))
    spec = spec_for(deployment_id, function, restart_backoff_s=2.0, restart_backoff_max_s=8.0)
    async with open_deployment(spec) as dep, dep.events() as events:
        assert (await dep.invoke("faulty", {"crash_later": 0.2})).ok
        exited = await next_event(events, InstanceExited)
        assert isinstance(exited, InstanceExited)
        assert (exited.cause, exited.during_invocation, exited.exit_code) == ("crash", False, 5)
        restarted = await next_event(events, InstanceRestarted)
        assert isinstance(restarted, InstanceRestarted)
        assert restarted.backoff_s == 2.0
        assert restarted.reason == "exited with code 5"
        assert restarted.retry_at is not None
        (instance,) = dep.statistics().functions[0].instances
        if instance.state == "backoff":  # (the replacement may already be starting on a slow VM)
            assert instance.retry_at == restarted.retry_at
        assert instance.last_exit == "exited with code 5"
        assert instance.crash_streak == 1
        # The second crash in a row waits twice as long.
        await next_event(events, faaslab.InstanceReady)
        assert (await dep.invoke("faulty", {"crash_later": 0.2})).ok
        again = await next_event(events, InstanceRestarted)
        assert isinstance(again, InstanceRestarted)
        assert again.backoff_s == 4.0
        assert not dep.statistics().functions[0].failed


@pytest.mark.usefixtures("nothing_left")
async def test_only_a_user_bound_refuses_a_crashing_function(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("faulty", FAULTY)
    function = FunctionSpec(name="faulty", code=str(code))
    spec = spec_for(deployment_id, function, max_restarts=0, restart_backoff_s=0.2)
    async with open_deployment(spec) as dep, dep.events() as events:
        assert (await dep.invoke("faulty", {"crash_later": 0.2})).ok
        failed = await next_event(events, faaslab.FunctionFailedEvent)
        assert isinstance(failed, faaslab.FunctionFailedEvent)
        assert "max_restarts=0" in failed.reason
        assert "exited with code 5" in failed.reason
        with pytest.raises(faaslab.FunctionFailed, match="crashed 1 time within"):
            await dep.invoke("faulty", {})
