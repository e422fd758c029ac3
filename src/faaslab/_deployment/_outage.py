"""Riding out the loss of the engine, as kubelet rides out a container-runtime restart.

When an engine call raises :class:`EngineUnreachable`, the supervisor that
saw it calls :meth:`EngineOutage.ride_out`. The first call starts one watch
for the whole deployment; every caller then waits. The watch probes the
engine once a second, within ``timeout_s`` of the first loss:

- when the engine answers, ``restore`` (given by the deployment) removes
  what the restart left (stopped containers) and brings the shared objects
  back (the network, the storage server on its kept volume); on success the
  waiting supervisors are released and recreate their instances, where they
  can on the same host ports. A restore that fails because the engine went
  away again is retried within the same bound.
- past the bound, ``give_up`` (the deployment) ends the deployment: it
  writes the statistics it has, marked incomplete. The waiting supervisors
  are cancelled by that stop.

Meanwhile ``since`` says when the engine was lost (for ``status`` and for
invocations, which fail fast instead of queueing).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable

import anyio
import structlog
from anyio.abc import TaskGroup

from .._backend import Backend
from .._errors import EngineError, EngineUnreachable, FaaslabError

__all__ = ("PROBE_INTERVAL_S", "EngineOutage")

log = structlog.get_logger()

#: How often the engine is asked whether it answers again.
PROBE_INTERVAL_S = 1.0
#: Bound on one probe (a hung engine must not stall the watch).
PROBE_TIMEOUT_S = 5.0


def _utc(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


class EngineOutage:
    """One deployment's view of its engine: answering, or lost since when."""

    def __init__(
        self,
        engine: Backend,
        *,
        timeout_s: float,
        restore: Callable[[], Awaitable[None]],
        give_up: Callable[[str], Awaitable[None]],
        on_lost: Callable[[float, str], None],
        on_back: Callable[[float], None],
    ) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._restore = restore
        self._give_up = give_up
        self._on_lost = on_lost
        self._on_back = on_back
        self._back: anyio.Event | None = None
        #: Unix time the engine was lost at (None while it answers).
        self.since: float | None = None
        #: Outages ridden out so far, and their total duration.
        self.outages = 0
        self.outage_s = 0.0

    @property
    def until(self) -> float | None:
        """Unix time past which the deployment ends, during an outage."""
        return None if self.since is None else self.since + self._timeout_s

    def describe(self) -> str:
        """The outage in words, for errors and ``status``."""
        if self.since is None:
            return "the engine answers"
        return (
            f"the engine at {self._engine.endpoint} is unreachable since {_utc(self.since)}; "
            f"the deployment waits for it until {_utc(self.since + self._timeout_s)}"
        )

    def unreachable(self) -> EngineUnreachable:
        """The error an invocation gets during an outage."""
        assert self.since is not None
        return EngineUnreachable(
            self._engine.endpoint,
            f"lost since {_utc(self.since)}; the deployment waits for it until "
            f"{_utc(self.since + self._timeout_s)} and then recreates its instances",
        )

    def lost(self, exc: EngineError) -> EngineUnreachable:
        """An engine error, once a ping found the engine gone too."""
        return EngineUnreachable(self._engine.endpoint, f"it stopped answering ({exc})")

    async def answers(self) -> bool:
        """Whether the engine answers a ping now (bounded)."""
        try:
            with anyio.fail_after(PROBE_TIMEOUT_S):
                await self._engine.ping()
        except (EngineError, TimeoutError):
            return False
        return True

    async def ride_out(self, tg: TaskGroup, cause: EngineUnreachable) -> None:
        """Wait until the engine is back and the deployment's objects restored.

        Never returns once the bound has passed: the deployment ends, and its
        stop cancels the caller.
        """
        if self._back is None:
            self._back = anyio.Event()
            self.since = time.time()
            log.warning("engine.lost", endpoint=self._engine.endpoint, reason=cause.reason)
            self._on_lost(self.since, cause.reason)
            tg.start_soon(self._watch, self._back)
        await self._back.wait()

    async def _watch(self, back: anyio.Event) -> None:
        assert self.since is not None
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            if await self.answers():
                try:
                    with anyio.fail_after(max(1.0, deadline - time.monotonic())):
                        await self._restore()
                except (FaaslabError, TimeoutError) as exc:
                    # Gone again, or not ready yet: keep trying within the bound.
                    log.warning("engine.restore_failed", error=str(exc) or type(exc).__name__)
                else:
                    outage = time.time() - self.since
                    self.outages += 1
                    self.outage_s += outage
                    self.since = None
                    self._back = None
                    self._on_back(outage)
                    back.set()
                    return
            # The engine offers no signal for coming back: probe, bounded by the deadline.
            await anyio.sleep(min(PROBE_INTERVAL_S, max(0.0, deadline - time.monotonic())))
        reason = (
            f"the engine at {self._engine.endpoint} was unreachable from {_utc(self.since)} "
            f"for more than {self._timeout_s:g} s"
        )
        log.error("engine.gone", endpoint=self._engine.endpoint, timeout_s=self._timeout_s)
        await self._give_up(reason)
