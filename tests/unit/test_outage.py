"""Riding out the engine's loss, against a fake engine (the I/O edge): one watch, restore, bound."""

from __future__ import annotations

import anyio
import pytest

from faaslab import EngineError, EngineUnreachable
from faaslab._deployment import _outage
from faaslab._deployment._outage import EngineOutage

pytestmark = pytest.mark.anyio


class FakeEngine:
    """Answers pings once ``up`` is set."""

    endpoint = "unix:///fake.sock"

    def __init__(self) -> None:
        self.up = False
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if not self.up:
            raise EngineUnreachable(self.endpoint, "No such file or directory")


@pytest.fixture(autouse=True)
def fast_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_outage, "PROBE_INTERVAL_S", 0.01)


class Recorder:
    def __init__(self, restore_failures: int = 0) -> None:
        self.restores = 0
        self.restore_failures = restore_failures
        self.lost: list[str] = []
        self.back: list[float] = []
        self.gone: list[str] = []
        self.ended = anyio.Event()

    async def restore(self) -> None:
        self.restores += 1
        if self.restores <= self.restore_failures:
            raise EngineError("the engine went away again")

    async def give_up(self, reason: str) -> None:
        self.gone.append(reason)
        self.ended.set()


def outage_for(engine: FakeEngine, recorder: Recorder, timeout_s: float) -> EngineOutage:
    return EngineOutage(
        engine,  # type: ignore[arg-type]
        timeout_s=timeout_s,
        restore=recorder.restore,
        give_up=recorder.give_up,
        on_lost=lambda since, reason: recorder.lost.append(reason),
        on_back=recorder.back.append,
    )


async def test_every_supervisor_waits_for_one_watch_and_one_restore() -> None:
    engine, recorder = FakeEngine(), Recorder(restore_failures=1)
    outage = outage_for(engine, recorder, timeout_s=30)
    released: list[int] = []
    cause = EngineUnreachable(engine.endpoint, "No such file or directory")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def supervisor(n: int) -> None:
                await outage.ride_out(tg, cause)
                released.append(n)

            for n in range(3):
                tg.start_soon(supervisor, n)
            await anyio.wait_all_tasks_blocked()
            assert outage.since is not None
            assert "unreachable since" in outage.describe()
            assert "lost since" in str(outage.unreachable())
            assert released == []
            engine.up = True
    assert sorted(released) == [0, 1, 2]
    assert recorder.lost == ["No such file or directory"]  # one outage, announced once
    assert recorder.restores == 2  # the first failed: retried within the bound
    assert len(recorder.back) == 1
    assert (outage.since, outage.outages) == (None, 1)
    assert recorder.gone == []


async def test_past_the_bound_the_deployment_is_ended() -> None:
    engine, recorder = FakeEngine(), Recorder()
    outage = outage_for(engine, recorder, timeout_s=0.2)
    cause = EngineUnreachable(engine.endpoint, "connection refused")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(outage.ride_out, tg, cause)
            await recorder.ended.wait()
            tg.cancel_scope.cancel()  # as the deployment's stop cancels its supervisors
    assert engine.pings >= 2
    assert recorder.restores == 0
    assert "for more than 0.2 s" in recorder.gone[0]
    assert recorder.back == []
