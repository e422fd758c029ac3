"""Placing invocations on instances (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest

from faaslab import InvocationTimeout
from faaslab._deployment._routing import Router, pick


@dataclass
class Fake:
    has_capacity: bool = True
    in_flight: int = 0
    calls: int = 0


def test_pick_prefers_fewest_in_flight_then_fewest_calls() -> None:
    a, b, c = Fake(in_flight=1, calls=0), Fake(in_flight=0, calls=5), Fake(in_flight=0, calls=2)
    assert pick([a, b, c]) is c


def test_pick_skips_full_and_missing_instances() -> None:
    full = Fake(has_capacity=False)
    assert pick([None, full]) is None
    free = Fake(calls=9)
    assert pick([None, full, free]) is free


@pytest.mark.anyio
async def test_acquire_waits_for_a_free_instance_then_times_out() -> None:
    router = Router()
    busy = Fake(has_capacity=False)
    async with anyio.create_task_group() as tg:
        got: list[Fake] = []

        async def waiter() -> None:
            got.append(await router.acquire("fn", [busy], timeout=5))

        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        busy.has_capacity = True
        router.notify()
    assert got == [busy]
    busy.has_capacity = False
    with pytest.raises(InvocationTimeout, match=r"no instance was free within 0\.05 s"):
        await router.acquire("fn", [busy], timeout=0.05)


@pytest.mark.anyio
async def test_acquire_sees_positions_refilled_while_it_waits() -> None:
    router = Router()
    positions: list[Fake | None] = [None, None]  # both instances being replaced
    async with anyio.create_task_group() as tg:
        got: list[Fake] = []

        async def waiter() -> None:
            got.append(await router.acquire("fn", lambda: list(positions), timeout=5))

        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        fresh = Fake()
        positions[1] = fresh  # a new container in the second position
        router.notify()
    assert got == [fresh]
