"""A function's pool following its scaling policy, with fake instances (no Docker).

The pool is driven as the Deployment actor drives it: ``start_slot`` and
``stop_slot`` are recorded instead of running supervisors, and the test plays
the supervisors' part (``instance_up``, ``slot_done``, ...). The clock is a
hand-moved one wherever the waits allow it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import pytest

from faaslab import FaaslabError, FunctionFailed, InstanceStartError, InvocationTimeout
from faaslab._deployment._pool import FunctionPool
from faaslab._deployment._restart import RestartPolicy
from faaslab._deployment._scaling import Decision
from faaslab._deployment._slot import Call, Slot
from faaslab._function import Instance, InstanceState, Lifecycle
from faaslab._spec import FunctionSpec, ScalingSpec

pytestmark = pytest.mark.anyio


class FakeInstance:
    """What the pool reads of an Instance."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.container_id = f"c-{name}"
        self.sebs_url = "127.0.0.1:1"
        self.host_port = 1
        self.calls = 0
        self.in_flight = 0
        self.lifecycle = Lifecycle()
        self.lifecycle.to(InstanceState.STARTING)
        self.lifecycle.to(InstanceState.READY)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Harness:
    """A pool with its actor's side played by hand."""

    def __init__(
        self, tmp_path: Path, *, queue_timeout_s: float = 5.0, **scaling: Any
    ) -> None:
        tmp_path.mkdir(exist_ok=True)
        (tmp_path / "function.py").write_text("def handler(event):\n    return {}\n")
        instances = int(scaling.pop("instances", 1))
        concurrency = int(scaling.pop("concurrency", 1))
        spec = FunctionSpec(
            name="fn",
            code=str(tmp_path),
            instances=instances,
            concurrency=concurrency,
            scaling=ScalingSpec(**scaling),
        )
        self.clock = Clock()
        self.started: list[Slot] = []
        self.stopped: list[Slot] = []
        self.pool = FunctionPool(
            spec,
            clock=self.clock,
            start_slot=self.started.append,
            stop_slot=self.stopped.append,
            queue_timeout_s=queue_timeout_s,
            start_timeout_s=5.0,
            restart_policy=RestartPolicy(),
        )

    def deploy(self) -> list[Slot]:
        slots = self.pool.deploy()
        for slot in slots:
            self.up(slot)
        self.pool.run()
        return slots

    def up(self, slot: Slot) -> FakeInstance:
        instance = FakeInstance(slot.name)
        slot.instance = cast(Instance, instance)
        self.pool.instance_up(slot)
        return instance

    def done(self, slot: Slot) -> None:
        slot.instance = None
        slot.done.set()
        self.pool.slot_done(slot)

    async def run_call(self, call: Call) -> FakeInstance:
        """The call reaches its instance (the actor's `_call`), as far as the pool sees."""
        instance = await self.pool.ready_instance(call)
        fake = cast(FakeInstance, instance)
        fake.calls += 1
        return fake


async def test_keep_alive_starts_on_demand_and_stops_after_the_keep_alive(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy="keep-alive", keep_alive_s=30, max_instances=2)
    assert h.deploy() == []  # from zero
    call = await h.pool.acquire()
    assert call.cold
    assert [s.name for s in h.started] == ["fn-0"]
    (slot,) = h.started
    h.clock.t += 1.5  # the container starts
    h.up(slot)
    await h.run_call(call)
    h.clock.t += 0.2
    h.pool.finish(call)
    assert slot.idle_since == h.clock.t
    assert h.pool.next_check_at == pytest.approx(h.clock.t + 30)
    warm = await h.pool.acquire()  # the instance is idle: a warm call
    assert not warm.cold
    assert warm.slot is slot
    assert len(h.started) == 1
    await h.run_call(warm)
    h.pool.finish(warm)
    h.clock.t += 30
    h.pool._react(h.clock.t)  # what run_timer does at next_check_at
    assert h.stopped == [slot]
    assert slot.stopping
    assert h.pool.view().instances == ()  # stopping: out of every view
    h.clock.t += 0.3  # its teardown
    h.done(slot)
    stats = h.pool.scaling_statistics()
    assert (stats.starts, stats.cold_starts, stats.stops, stats.alive) == (1, 1, 1, 0)
    assert stats.idle_instance_s == pytest.approx(30.3)
    assert stats.starting_instance_s == pytest.approx(1.5)
    assert h.pool.slots == []  # a stopped position leaves the pool and the state file


async def test_a_burst_starts_up_to_the_limit_and_queues_the_rest_fifo(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy="keep-alive", keep_alive_s=30, max_instances=2)
    h.deploy()
    placed: list[tuple[int, str]] = []

    async def caller(n: int) -> None:
        call = await h.pool.acquire()
        assert call.slot is not None
        placed.append((n, call.slot.name))
        await h.run_call(call)
        await anyio.lowlevel.checkpoint()  # the call is in flight for one step
        h.pool.finish(call)

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(caller, n)
            await anyio.wait_all_tasks_blocked()
        assert [s.name for s in h.started] == ["fn-0", "fn-1"]
        assert h.pool.statistics().queued == 3
        for slot in h.started:
            h.up(slot)
    assert [n for n, _ in placed] == [0, 1, 2, 3, 4]  # first come, first served
    assert len(h.started) == 2
    assert h.pool.scaling_statistics().max_alive == 2


async def test_a_queued_call_times_out_and_leaves_the_queue(tmp_path: Path) -> None:
    h = Harness(tmp_path, queue_timeout_s=0.05, policy="keep-alive", max_instances=1)
    h.deploy()
    first = await h.pool.acquire()
    with pytest.raises(InvocationTimeout, match=r"no instance was free within 0\.05 s"):
        await h.pool.acquire()
    assert h.pool.statistics().queued == 0
    h.pool.finish(first)
    assert h.pool.view().instances[0].busy == 0


async def test_cancelled_calls_give_their_place_back(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy="keep-alive", max_instances=1)
    h.deploy()
    holder = await h.pool.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(h.pool.acquire)  # queued behind the holder
        await anyio.wait_all_tasks_blocked()
        assert h.pool.statistics().queued == 1
        tg.cancel_scope.cancel()
    assert h.pool.statistics().queued == 0
    # A call cancelled while it waits for its (cold) instance frees its place too.
    assert holder.slot is not None
    with anyio.move_on_after(0.01):
        await h.pool.ready_instance(holder)  # still starting
    h.pool.finish(holder)
    assert holder.slot.calls == set()
    view = h.pool.view()
    assert view.instances[0].busy == 0
    # A place given back without a call made is no idle period for the policy.
    assert holder.slot.idle_since is None  # not ready yet: not idle either


async def test_max_instances_counts_an_instance_still_being_torn_down(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy="keep-alive", keep_alive_s=0, max_instances=1)
    h.deploy()
    call = await h.pool.acquire()
    (slot,) = h.started
    h.up(slot)
    await h.run_call(call)
    h.pool.finish(call)  # keep-alive 0: stopped at once
    assert h.stopped == [slot]
    second = await h.pool.acquire()  # a cold start, on a position not launched yet
    assert second.cold
    assert second.slot is not None
    assert second.slot.state() == "pending"
    assert len(h.started) == 1  # its container waits for the teardown
    assert h.pool.scaling_statistics().alive == 1
    h.done(slot)
    assert h.started[1:] == [second.slot]  # launched once the teardown ended
    h.up(second.slot)
    await h.run_call(second)
    h.pool.finish(second)
    stats = h.pool.scaling_statistics()
    assert (stats.max_alive, stats.cold_starts, stats.cold_calls) == (1, 2, 2)


async def test_fixed_fills_the_pool_at_deploy_and_places_like_routing(tmp_path: Path) -> None:
    h = Harness(tmp_path, instances=3)
    slots = h.deploy()
    assert [s.name for s in slots] == ["fn-0", "fn-1", "fn-2"]
    assert h.started == []
    calls = [await h.pool.acquire() for _ in range(3)]
    assert {c.slot.name for c in calls if c.slot} == {"fn-0", "fn-1", "fn-2"}
    assert not any(c.cold for c in calls)
    for call in calls:
        await h.run_call(call)
        h.pool.finish(call)
    h.clock.t += 1e6
    h.pool._react(h.clock.t)
    assert h.stopped == []
    assert h.pool.next_check_at is None


async def test_fixed_waits_through_a_restart_and_the_call_is_cold(tmp_path: Path) -> None:
    h = Harness(tmp_path, instances=1)
    (slot,) = h.deploy()
    slot.instance = None  # its container died
    h.pool.instance_down(slot)
    async with anyio.create_task_group() as tg:
        got: list[FakeInstance] = []

        async def caller() -> None:
            call = await h.pool.acquire()  # fixed: queued while restarting
            got.append(await h.run_call(call))
            h.pool.finish(call)

        tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        h.pool.instance_starting(slot)
        h.up(slot)
    assert got
    assert got[0].name == "fn-0"
    stats = h.pool.scaling_statistics()
    assert (stats.starts, stats.stops, stats.alive) == (2, 1, 1)


async def test_a_failed_on_demand_start_fails_its_calls_and_holds_the_min_instances(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, policy="keep-alive", min_instances=1, max_instances=3)
    (first,) = h.deploy()
    busy = await h.pool.acquire()
    assert busy.slot is first
    cold = await h.pool.acquire()
    (slot,) = h.started
    assert cold.slot is slot
    error = InstanceStartError("fn-1: /alive did not answer within 5 s")
    h.pool.start_failed(slot, error)
    h.done(slot)
    with pytest.raises(InstanceStartError, match="did not answer"):
        await h.pool.ready_instance(cold)
    h.pool.finish(cold)
    # The min instance is lost too: its replacement waits for the backoff.
    first.instance = None
    h.pool.instance_down(first)
    h.done(first)
    h.pool.finish(busy)
    assert len(h.started) == 1
    # The crash policy's first step (RestartPolicy's 1 s).
    assert h.pool.next_check_at == pytest.approx(h.clock.t + 1.0)
    h.clock.t += 1.0
    h.pool._react(h.clock.t)
    assert len(h.started) == 2  # min_instances restored after the backoff


async def test_stop_and_failure_wake_every_waiting_call(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy="keep-alive", max_instances=1)
    h.deploy()
    starting = await h.pool.acquire()
    errors: list[BaseException] = []

    async def queued() -> None:
        try:
            await h.pool.acquire()
        except FaaslabError as exc:
            errors.append(exc)

    async def waiting() -> None:
        try:
            await h.pool.ready_instance(starting)
        except FaaslabError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(queued)
        tg.start_soon(waiting)
        await anyio.wait_all_tasks_blocked()
        h.pool.close("deployment d is stopping: no new invocations")
    assert [str(e) for e in errors] == ["deployment d is stopping: no new invocations"] * 2
    with pytest.raises(FaaslabError, match="is stopping"):
        await h.pool.acquire()
    h.pool.finish(starting)
    assert h.started[1:] == []  # a closed pool starts nothing

    failed = Harness(tmp_path / "f", instances=1)
    (_slot,) = failed.deploy()
    failed.pool.failed = "instance fn-0 died 4 times within 60 s"
    failed.pool.function_failed()
    with pytest.raises(FunctionFailed, match="died 4 times"):
        await failed.pool.acquire()


async def test_invoke_on_a_pool_instance_keeps_it_busy_for_the_policy(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy="keep-alive", keep_alive_s=0, min_instances=0, max_instances=1)
    h.deploy()
    call = await h.pool.acquire()
    (slot,) = h.started
    instance = h.up(slot)
    await h.run_call(call)
    warm_up = h.pool.place_on(cast(Instance, instance))
    assert warm_up is not None
    h.pool.finish(call)
    assert h.stopped == []  # the warm-up call still runs on it
    warm_up.running = True
    h.pool.finish(warm_up)
    assert h.stopped == [slot]
    assert h.pool.place_on(cast(Instance, FakeInstance("other"))) is None


async def test_the_timer_decides_at_next_check_at_without_polling(tmp_path: Path) -> None:
    (tmp_path / "function.py").write_text("def handler(event):\n    return {}\n")
    spec = FunctionSpec(
        name="fn",
        code=str(tmp_path),
        scaling=ScalingSpec(policy="keep-alive", keep_alive_s=0.05, max_instances=1),
    )
    stopped = anyio.Event()
    started: list[Slot] = []
    decisions = 0
    pool = FunctionPool(
        spec,
        clock=anyio.current_time,
        start_slot=started.append,
        stop_slot=lambda slot: stopped.set(),
        queue_timeout_s=5,
        start_timeout_s=5,
        restart_policy=RestartPolicy(),
    )
    real_decide = pool.policy.decide

    def counting(view: Any, now: float) -> Any:
        nonlocal decisions
        decisions += 1
        return real_decide(view, now)

    pool.policy.decide = counting  # type: ignore[method-assign]
    pool.deploy()
    pool.run()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.run_timer)
        call = await pool.acquire()
        (slot,) = started
        slot.instance = cast(Instance, FakeInstance(slot.name))
        pool.instance_up(slot)
        call.running = True
        pool.finish(call)
        before = decisions
        with anyio.fail_after(5):
            await stopped.wait()
        tg.cancel_scope.cancel()
    assert decisions - before <= 3  # woken at the deadline, not polling


async def test_a_start_the_policy_asked_for_at_the_limit_is_made_after_the_teardown(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, policy="keep-alive", keep_alive_s=0, max_instances=1)
    h.deploy()
    call = await h.pool.acquire()
    (slot,) = h.started
    h.up(slot)
    await h.run_call(call)
    asked = iter([Decision(start=1)])  # a pre-warm, asked for once (as a policy spends it)
    real = h.pool.policy.decide
    h.pool.policy.decide = lambda view, now: next(asked, None) or real(view, now)  # type: ignore[method-assign]
    h.pool.finish(call)  # keep-alive 0 would stop it, but the stub asks for a start
    h.pool.policy.decide = real  # type: ignore[method-assign]
    h.pool._react(h.clock.t)  # now the real policy stops the idle instance
    assert h.stopped == [slot]
    assert len(h.started) == 1  # the start waits: the limit counts the teardown
    h.done(slot)
    assert [s.reason for s in h.started] == ["call", "policy"]  # made once it ended


async def test_positions_never_launched_end_with_the_pool(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy="keep-alive", keep_alive_s=0, max_instances=1)
    h.deploy()
    first = await h.pool.acquire()
    (slot,) = h.started
    h.up(slot)
    await h.run_call(first)
    h.pool.finish(first)  # stopped at once, torn down slowly
    waiting = await h.pool.acquire()
    pending = waiting.slot
    assert pending is not None
    h.pool.close("deployment d is stopping: no new invocations")
    assert pending.done.is_set()  # nothing to wait for at stop
    with pytest.raises(FaaslabError, match="is stopping"):
        await h.pool.ready_instance(waiting)
    h.pool.finish(waiting)
    h.done(slot)
    assert len(h.started) == 1  # a closed pool launches nothing
