"""The deployment's event hub: fan-out, slow and departed subscribers, no stream left open."""

from __future__ import annotations

import gc

import anyio
import pytest
import structlog

from faaslab._deployment._events import EVENT_BUFFER, EventHub
from faaslab._messages import DeploymentStopped

pytestmark = pytest.mark.anyio


def stopped(n: int) -> DeploymentStopped:
    return DeploymentStopped(at=float(n), deployment="d")


async def test_every_subscriber_gets_every_event_until_the_hub_closes() -> None:
    hub = EventHub(structlog.get_logger())
    with hub.subscribe() as first, hub.subscribe() as second:
        hub.publish(stopped(1))
        hub.publish(stopped(2))
        hub.close()
        assert [e.at async for e in first] == [1.0, 2.0]
        assert [e.at async for e in second] == [1.0, 2.0]


async def test_a_subscriber_that_does_not_read_loses_events_instead_of_stalling() -> None:
    hub = EventHub(structlog.get_logger())
    with hub.subscribe() as slow:
        for n in range(EVENT_BUFFER + 5):
            hub.publish(stopped(n))
        assert hub.dropped == 5
        hub.close()
        assert len([e async for e in slow]) == EVENT_BUFFER


async def test_a_departed_subscriber_is_forgotten_and_a_late_one_ends_at_once() -> None:
    hub = EventHub(structlog.get_logger())
    gone = hub.subscribe()
    gone.close()
    hub.publish(stopped(1))  # finds it closed: forgets it, closing its side
    hub.close()
    with hub.subscribe() as late:  # after close: nothing will come
        with anyio.fail_after(1):
            assert [e async for e in late] == []
    del gone, late
    gc.collect()  # no ResourceWarning (the suite turns warnings into errors)
