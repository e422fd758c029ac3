"""A pool's counters, computed exactly from its events (no I/O, no clock).

The deployment's pool feeds a :class:`PoolAccounting` the events it acts on,
with the time of each (monotonic seconds, the clock it gives its scaling
policy)::

    instance_started(id, t)   the pool asked for an instance (it is alive from now)
    instance_ready(id, t)     it answers
    call_started(id, t)       a call was placed on it (maybe before it is ready)
    call_finished(id, t)      that call ended (answer, error or timeout)
    instance_stopped(id, t)   it is gone, stopped or lost

and reads :meth:`PoolAccounting.statistics` for a summary: cold starts,
instances alive over time as change points, the maximum, and instance-seconds
spent starting, busy and idle (idle x memory limit = ``idle_memory_mb_s``).
Kept apart from the scaling policies (``_scaling``) because it measures
whatever policy ran, and sits beside it in ``_deployment/``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Literal

import msgspec

__all__ = ("PoolAccounting", "PoolStatistics", "alive_at")


class PoolStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's counters up to a moment (exact: integrated over its events)."""

    #: Instances started, and how many of them had a call waiting (cold starts).
    starts: int
    cold_starts: int
    #: Calls that waited for an instance to start (several may wait on one cold start).
    cold_calls: int = 0
    stops: int
    alive: int
    max_alive: int
    #: (time, instances alive from then on), one point per change.
    alive_timeline: tuple[tuple[float, int], ...]
    #: Instance-seconds spent starting, serving at least one call, and idle (ready, no call).
    starting_instance_s: float
    busy_instance_s: float
    idle_instance_s: float

    def idle_memory_mb_s(self, memory_mb: float) -> float:
        """Memory held by idle instances, at a limit of ``memory_mb`` each."""
        return self.idle_instance_s * memory_mb


class _Tracked:
    __slots__ = ("cold", "in_flight", "ready", "since")

    def __init__(self, t: float) -> None:
        self.ready = False
        self.in_flight = 0
        self.since = t
        self.cold = False

    @property
    def state(self) -> Literal["starting", "busy", "idle"]:
        if not self.ready:
            return "starting"
        return "busy" if self.in_flight else "idle"


class PoolAccounting:
    """Counters of one pool, fed with its events in time order (no clock read).

    A start is cold when a call is placed on the instance before it is ready,
    i.e. the call waited for it; instances started ahead of demand (min
    instances, pre-warm, deploy) are not.
    """

    def __init__(self) -> None:
        self._instances: dict[str, _Tracked] = {}
        self._totals = {"starting": 0.0, "busy": 0.0, "idle": 0.0}
        self._timeline: list[tuple[float, int]] = []
        self._last_t = -math.inf
        self._starts = 0
        self._cold_starts = 0
        self._cold_calls = 0
        self._stops = 0
        self._max_alive = 0

    def _at(self, t: float) -> None:
        if t < self._last_t:
            raise ValueError(f"event at {t} before the previous one at {self._last_t}")
        self._last_t = t

    def _get(self, instance: str) -> _Tracked:
        try:
            return self._instances[instance]
        except KeyError:
            raise ValueError(f"instance {instance!r} is not alive") from None

    def _change(self, tracked: _Tracked, t: float) -> None:
        """Close the time spent in the current state; the caller then changes it."""
        self._totals[tracked.state] += t - tracked.since
        tracked.since = t

    def _alive_changed(self, t: float) -> None:
        alive = len(self._instances)
        self._max_alive = max(self._max_alive, alive)
        if self._timeline and self._timeline[-1][0] == t:
            self._timeline[-1] = (t, alive)
        else:
            self._timeline.append((t, alive))

    def is_alive(self, instance: str) -> bool:
        """Whether ``instance`` was started and is not stopped yet."""
        return instance in self._instances

    def instance_started(self, instance: str, t: float) -> None:
        self._at(t)
        if instance in self._instances:
            raise ValueError(f"instance {instance!r} is already alive")
        self._instances[instance] = _Tracked(t)
        self._starts += 1
        self._alive_changed(t)

    def instance_ready(self, instance: str, t: float) -> None:
        self._at(t)
        tracked = self._get(instance)
        self._change(tracked, t)
        tracked.ready = True

    def call_started(self, instance: str, t: float) -> None:
        """A call was placed on the instance (it may wait for the instance to be ready)."""
        self._at(t)
        tracked = self._get(instance)
        if not tracked.ready:
            self._cold_calls += 1
            if not tracked.cold:
                tracked.cold = True
                self._cold_starts += 1
        self._change(tracked, t)
        tracked.in_flight += 1

    def call_finished(self, instance: str, t: float) -> None:
        self._at(t)
        tracked = self._get(instance)
        if not tracked.in_flight:
            raise ValueError(f"instance {instance!r} has no call in flight")
        self._change(tracked, t)
        tracked.in_flight -= 1

    def instance_stopped(self, instance: str, t: float) -> None:
        """The instance is gone (stopped or lost); calls still on it are dropped."""
        self._at(t)
        tracked = self._get(instance)
        self._change(tracked, t)
        del self._instances[instance]
        self._stops += 1
        self._alive_changed(t)

    def statistics(self, now: float) -> PoolStatistics:
        """The counters up to ``now`` (instances still alive counted until then)."""
        if now < self._last_t:
            raise ValueError(f"now {now} is before the last event at {self._last_t}")
        totals = dict(self._totals)
        for tracked in self._instances.values():
            totals[tracked.state] += now - tracked.since
        return PoolStatistics(
            starts=self._starts,
            cold_starts=self._cold_starts,
            cold_calls=self._cold_calls,
            stops=self._stops,
            alive=len(self._instances),
            max_alive=self._max_alive,
            alive_timeline=tuple(self._timeline),
            starting_instance_s=totals["starting"],
            busy_instance_s=totals["busy"],
            idle_instance_s=totals["idle"],
        )


def alive_at(timeline: Sequence[tuple[float, int]], t: float) -> int:
    """Instances alive at ``t`` on an :attr:`PoolStatistics.alive_timeline`."""
    index = bisect.bisect_right([point for point, _ in timeline], t)
    return timeline[index - 1][1] if index else 0
