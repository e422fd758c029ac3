"""A deployment's lifecycle events: logged once, fanned out to every subscriber.

Each event is logged under its stable name (the union's tag, e.g.
``instance.ready``) and offered to every subscriber's bounded stream without
waiting: a subscriber that does not read loses events (counted in
``dropped``) instead of stalling supervision.
"""

from __future__ import annotations

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from structlog.typing import FilteringBoundLogger

from .._messages import (
    DeploymentEnded,
    DeploymentEvent,
    EngineLost,
    FunctionFailedEvent,
    InstanceExited,
    InstanceStartFailed,
    SamplerLagging,
)

__all__ = ("EVENT_BUFFER", "EventHub")

#: Events buffered per subscriber before newer ones are dropped (and counted).
EVENT_BUFFER = 1024

#: Events that mean something went wrong: logged as warnings.
_WARNINGS = (
    InstanceExited
    | InstanceStartFailed
    | FunctionFailedEvent
    | SamplerLagging
    | EngineLost
    | DeploymentEnded
)


class EventHub:
    """Publishes one deployment's events to its log and its subscribers."""

    def __init__(self, log: FilteringBoundLogger) -> None:
        self._log = log
        self._subscribers: list[MemoryObjectSendStream[DeploymentEvent]] = []
        self._closed = False
        #: Events a slow subscriber did not get.
        self.dropped = 0

    def subscribe(self) -> MemoryObjectReceiveStream[DeploymentEvent]:
        send, receive = anyio.create_memory_object_stream[DeploymentEvent](EVENT_BUFFER)
        if self._closed:
            # Nothing will ever be published: an ended stream, and no send
            # side left for the garbage collector to find unclosed.
            send.close()
        else:
            self._subscribers.append(send)
        return receive

    def publish(self, event: DeploymentEvent) -> None:
        fields = msgspec.structs.asdict(event)
        fields.pop("at", None)
        name = type(event).__struct_config__.tag
        level = "warning" if isinstance(event, _WARNINGS) else "info"
        getattr(self._log, level)(str(name), **fields)
        for subscriber in list(self._subscribers):
            try:
                subscriber.send_nowait(event)
            except anyio.WouldBlock:
                # A subscriber that does not read must not stall supervision.
                self.dropped += 1
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                # The subscriber closed its end: forget it.
                self._subscribers.remove(subscriber)
                subscriber.close()

    def close(self) -> None:
        """End every subscriber's stream (their ``async for`` loops finish)."""
        self._closed = True
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()
