"""Function instances against the real engine: start, invoke, faults, teardown."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable
from pathlib import Path

import anyio
import pytest

import faaslab
from faaslab._backend import Backend
from faaslab._deployment._open import open_deployment
from faaslab._messages import DeploymentEvent
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

Leftovers = Callable[[str], Awaitable[list[str]]]

ECHO = """
import os, time

def handler(event):
    if event.get("raise"):
        raise ValueError("asked to fail")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(3)
    if event.get("allocate_mb"):
        block = bytearray(event["allocate_mb"] * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
    return {"echo": event}
"""


async def wait_for_event(events: AsyncIterable[DeploymentEvent], name: str) -> None:
    """Consume events until one named ``name`` arrives (bounded)."""
    with anyio.fail_after(30):
        async for event in events:
            if event.__struct_config__.tag == name:
                return
    pytest.fail(f"the event stream ended before {name}")


def spec_for(deployment_id: str, *functions: FunctionSpec, **options: object) -> DeploymentSpec:
    options.setdefault("storage", StorageSpec(kind="none"))
    return DeploymentSpec(functions=list(functions), deployment_id=deployment_id, **options)  # type: ignore[arg-type]


@pytest.mark.usefixtures("nothing_left")
async def test_four_instances_serve_100_calls_at_concurrency_8(
    leftovers_of: Leftovers, deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("echo", ECHO)
    spec = spec_for(deployment_id, FunctionSpec(name="echo", code=str(code), instances=4))
    async with open_deployment(spec) as dep:
        results: list[faaslab.Invocation] = []
        limiter = anyio.CapacityLimiter(8)

        async def call(i: int) -> None:
            async with limiter:
                results.append(await dep.invoke("echo", {"i": i}))

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(call, i)

        assert len(results) == 100
        assert sorted(r.output["echo"]["i"] for r in results) == list(range(100))
        assert all(r.ok for r in results)
        colds = Counter(r.instance for r in results if r.is_cold)
        assert set(colds) == {f"echo-{i}" for i in range(4)}
        assert all(count == 1 for count in colds.values())
        for r in results:
            assert r.begin <= r.end
            assert r.client_send <= r.client_receive
            assert r.latency_s > 0

        with pytest.raises(faaslab.InvocationError) as raised:
            await dep.invoke("echo", {"raise": True})
        assert raised.value.remote_type == "ValueError"
        assert "asked to fail" in raised.value.remote_message
        assert "Traceback" in raised.value.traceback
        after = await dep.invoke("echo", {"again": 1})
        assert after.output == {"echo": {"again": 1}}

        failed = await dep.invoke("echo", {"raise": True}, check=False)
        assert failed.error is not None
        assert failed.error.type == "ValueError"
        stats = dep.statistics()
        assert stats.functions[0].invocations == 103
        assert stats.functions[0].errors == 2
    assert await leftovers_of(deployment_id) == []


@pytest.mark.usefixtures("nothing_left")
async def test_container_is_hardened_and_published_on_loopback_only(
    engine: Backend, deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("echo", ECHO)
    function = FunctionSpec(name="echo", code=str(code), memory_mb=64, cpus=0.5)
    async with open_deployment(spec_for(deployment_id, function)) as dep:
        (instance,) = dep.instances()
        data = await engine.inspect_container(instance.container_id)
        assert data is not None
        host = data["HostConfig"]
        assert host["Privileged"] is False
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["Memory"] == 64 * 1024 * 1024
        assert host["MemorySwap"] == 64 * 1024 * 1024
        assert host["NanoCpus"] == 500_000_000
        bindings = data["NetworkSettings"]["Ports"]["8080/tcp"]
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
        assert any(m["Destination"] == "/function/function" and not m["RW"] for m in data["Mounts"])
        labels = data["Config"]["Labels"]
        assert labels["faaslab.deployment"] == deployment_id
        assert labels["faaslab.function"] == "echo"
        assert labels["faaslab.instance"] == "echo-0"
        assert f"faaslab-{deployment_id}" in data["NetworkSettings"]["Networks"]


@pytest.mark.usefixtures("nothing_left")
async def test_function_that_fails_at_import_reports_its_log(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function(
        "broken", "import no_such_module_here\n\ndef handler(event):\n    return {}\n"
    )
    spec = spec_for(deployment_id, FunctionSpec(name="broken", code=str(code), instances=2))
    with pytest.raises(faaslab.InstanceStartError) as raised:
        async with open_deployment(spec):
            pytest.fail("the deployment must not start")
    assert raised.value.container_exit_code == 1
    assert "no_such_module_here" in raised.value.logs
    assert "ModuleNotFoundError" in str(raised.value)


@pytest.mark.usefixtures("nothing_left")
async def test_allocation_beyond_the_limit_is_an_oom_kill(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("echo", ECHO)
    function = FunctionSpec(name="echo", code=str(code), memory_mb=48)
    async with open_deployment(spec_for(deployment_id, function)) as dep:
        with pytest.raises(faaslab.InstanceLost) as raised:
            await dep.invoke("echo", {"allocate_mb": 200})
        assert raised.value.oom_killed
        assert "OOM-killed" in str(raised.value)


@pytest.mark.usefixtures("nothing_left")
async def test_a_call_that_never_answers_times_out_and_the_instance_is_replaced(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("echo", ECHO)
    spec = spec_for(deployment_id, FunctionSpec(name="echo", code=str(code)))
    async with open_deployment(spec) as dep:
        with dep.events() as events:
            with pytest.raises(faaslab.InvocationTimeout):
                await dep.invoke("echo", {"sleep": 30}, timeout=0.5)
            await wait_for_event(events, "instance.ready")
        answer = await dep.invoke("echo", {"after": True})
        assert answer.is_cold  # a fresh container
        assert dep.statistics().functions[0].failed is False


@pytest.mark.usefixtures("nothing_left")
async def test_a_crashed_instance_is_replaced_and_the_function_keeps_serving(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("echo", ECHO)
    spec = spec_for(deployment_id, FunctionSpec(name="echo", code=str(code)), max_restarts=1)
    async with open_deployment(spec) as dep:
        with dep.events() as events:
            for _ in range(2):  # deaths during calls: never counted against the function
                with pytest.raises(faaslab.InstanceLost, match="exited with code 3"):
                    await dep.invoke("echo", {"exit": True})
                await wait_for_event(events, "instance.ready")
                assert (await dep.invoke("echo", {"n": 1})).output == {"echo": {"n": 1}}
        statistics = dep.statistics().functions[0]
        assert statistics.instances[0].restarts == 2
        assert statistics.instances[0].ends == {"invocation": 2}
        assert statistics.failed is False


async def test_missing_image_says_how_to_build_it(
    deployment_id: str, make_function: Callable[..., Path], leftovers_of: Leftovers
) -> None:
    code = make_function("echo", ECHO)
    spec = spec_for(
        deployment_id, FunctionSpec(name="echo", code=str(code)), image="faaslab/absent:0"
    )
    with pytest.raises(faaslab.ImageMissing, match="python -m faaslab images build"):
        async with open_deployment(spec):
            pytest.fail("must not start")
    assert await leftovers_of(deployment_id) == []


async def test_unreachable_engine_names_the_endpoint(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("echo", ECHO)
    spec = spec_for(deployment_id, FunctionSpec(name="echo", code=str(code)))
    with pytest.raises(faaslab.EngineUnreachable, match=r"unix:///nonexistent\.sock"):
        async with open_deployment(spec, endpoint="unix:///nonexistent.sock"):
            pytest.fail("must not start")


@pytest.mark.usefixtures("nothing_left")
async def test_cancel_while_starting_leaves_nothing(
    engine: Backend,
    leftovers_of: Leftovers,
    deployment_id: str,
    make_function: Callable[..., Path],
) -> None:
    # The import takes long, so the deployment is still starting when cancelled.
    code = make_function(
        "slow", "import time\ntime.sleep(60)\n\ndef handler(event):\n    return {}\n"
    )
    spec = spec_for(deployment_id, FunctionSpec(name="slow", code=str(code), instances=3))
    label = f"faaslab.deployment={deployment_id}"
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:

            async def start() -> None:
                async with open_deployment(spec):
                    pytest.fail("must not become ready")

            tg.start_soon(start)
            # Cancel once all three containers exist on the engine.
            # The engine offers no event for this: poll it, bounded by fail_after.
            while len(await engine.containers_labeled(label)) < 3:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    assert await leftovers_of(deployment_id) == []


async def test_two_deployments_side_by_side_and_one_cancelled_mid_start(
    engine: Backend,
    leftovers_of: Leftovers,
    deployment_id: str,
    make_function: Callable[..., Path],
) -> None:
    code = make_function("echo", ECHO)
    slow = make_function(
        "slow", "import time\ntime.sleep(60)\n\ndef handler(event):\n    return {}\n"
    )
    serving_id, doomed_id = f"{deployment_id}-a", f"{deployment_id}-b"
    serving = spec_for(serving_id, FunctionSpec(name="echo", code=str(code), instances=2))
    doomed = spec_for(doomed_id, FunctionSpec(name="slow", code=str(slow), instances=2))
    async with open_deployment(serving) as dep:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:

                async def start_doomed() -> None:
                    async with open_deployment(doomed):
                        pytest.fail("must not become ready")

                tg.start_soon(start_doomed)
                label = f"faaslab.deployment={doomed_id}"
                # The engine offers no event for this: poll it, bounded by fail_after.
                while len(await engine.containers_labeled(label)) < 2:
                    assert (await dep.invoke("echo", {"ok": 1})).output == {"echo": {"ok": 1}}
                tg.cancel_scope.cancel()
        assert await leftovers_of(doomed_id) == []
        results = [await dep.invoke("echo", {"i": i}) for i in range(10)]
        assert all(r.ok for r in results)
        assert len(dep.instances()) == 2
    assert await leftovers_of(serving_id) == []
