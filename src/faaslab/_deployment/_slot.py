"""One instance position of a pool (:class:`Slot`) and one call's place in it (:class:`Call`).

A position holds the container serving there now (if any), its crash
history and what it does between containers (backing off until when,
waiting for the engine), the cancel scope of its supervisor, the calls placed on it, and
the state file's entry for the last container it held. No I/O: the pool
(``_pool``) changes them, the Deployment actor's supervisors fill them.
"""

from __future__ import annotations

import anyio
import msgspec

from .._errors import FaaslabError
from .._function import Instance
from .._spec import FunctionSpec
from .._state import FunctionRecord, SebsFunctionConfig, SebsTrigger
from ._restart import CrashHistory

__all__ = ("Call", "InstanceStatistics", "Slot")


class InstanceStatistics(msgspec.Struct, frozen=True):
    name: str
    container_id: str | None
    url: str | None
    #: The container's lifecycle state, or between containers: "pending",
    #: "starting", "restarting", "backoff" (waiting for ``retry_at``),
    #: "engine-unreachable", "stopping", "stopped", "failed".
    state: str
    calls: int
    in_flight: int
    restarts: int
    #: Unix time of the next attempt while backing off.
    retry_at: float | None = None
    #: How the last container here ended (its death's reason), if one did.
    last_exit: str | None = None
    #: Crashes in a row (the backoff's exponent), and all ends by cause.
    crash_streak: int = 0
    ends: dict[str, int] = {}


class Slot:
    """One instance position of a function: the current container, and its history."""

    __slots__ = (
        "_changed",
        "calls",
        "crashes",
        "done",
        "ended",
        "ends",
        "ever_ready",
        "gave_up",
        "generation",
        "host_port",
        "idle_since",
        "index",
        "instance",
        "key",
        "last_exit",
        "launched",
        "name",
        "on_demand",
        "reason",
        "record",
        "restarts",
        "retry_at",
        "scope",
        "start_error",
        "started_at",
        "stopping",
        "waiting",
    )

    def __init__(
        self,
        function: str,
        index: int,
        *,
        started_at: float = 0.0,
        on_demand: bool = False,
        reason: str = "deploy",
    ) -> None:
        self.index = index
        self.name = f"{function}-{index}"
        self.instance: Instance | None = None
        self.restarts = 0
        #: Its crashes, for the backoff and the user's bound (``_restart``).
        self.crashes = CrashHistory()
        #: Ends by cause ("invocation", "crash", ...), for status.
        self.ends: dict[str, int] = {}
        self.last_exit: str | None = None
        #: Between containers: "backoff" (until ``retry_at``, Unix time) or
        #: "engine-unreachable"; None while starting or serving.
        self.waiting: str | None = None
        self.retry_at: float | None = None
        #: The crash policy gave the function up here (past ``max_restarts``).
        self.gave_up = False
        #: The host port of its last container, kept by a replacement after an engine restart.
        self.host_port: int | None = None
        #: Cancelling it stops this position's supervisor (and its container).
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        #: ``done`` as the pool last heard it (a plain flag: views read it per call).
        self.ended = False
        #: The state file's entry for the last container here (kept after it ends).
        self.record: FunctionRecord | None = None
        #: Started after the deployment was up: a failed start ends this
        #: position (its waiting calls get the error), not the deployment.
        self.on_demand = on_demand
        #: Why it was started ("deploy", "call", "policy"), for events and logs.
        self.reason = reason
        #: When the pool asked for it (the pool's clock).
        self.started_at = started_at
        #: Calls placed on it: waiting for it to be ready, or in flight.
        self.calls: set[Call] = set()
        #: Since when it is ready with no call (None while busy or not ready).
        self.idle_since: float | None = None
        #: The policy stopped it: it takes no call and leaves every view.
        self.stopping = False
        self.ever_ready = False
        self.start_error: FaaslabError | None = None
        #: Its container in the accounting (one per generation; None between them).
        self.key: str | None = None
        #: Its supervisor runs (False while it waits for a teardown at the limit).
        self.launched = False
        self.generation = 0
        self._changed = anyio.Event()

    @property
    def ready(self) -> bool:
        return self.instance is not None and self.instance.lifecycle.serving

    def notify(self) -> None:
        """Wake the calls waiting for this position to change (ready, lost, ended)."""
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def state(self) -> str:
        if self.stopping:
            return "stopping"
        if self.instance is not None:
            return self.instance.lifecycle.state.value
        if self.done.is_set():
            return "failed" if self.start_error is not None or self.gave_up else "stopped"
        if not self.launched:
            return "pending"
        if self.waiting is not None:
            return self.waiting
        return "restarting" if self.ever_ready else "starting"

    def statistics(self) -> InstanceStatistics:
        inst = self.instance
        return InstanceStatistics(
            name=self.name,
            container_id=inst.container_id if inst else None,
            url=inst.sebs_url if inst else None,
            state=self.state(),
            calls=inst.calls if inst else 0,
            in_flight=inst.in_flight if inst else 0,
            restarts=self.restarts,
            retry_at=self.retry_at if inst is None and self.waiting == "backoff" else None,
            last_exit=self.last_exit,
            crash_streak=self.crashes.streak,
            ends=dict(self.ends),
        )

    def refresh_record(self, spec: FunctionSpec, gone_state: str) -> FunctionRecord | None:
        """The state file's entry (SeBS's keys) for this position, kept up to date."""
        inst = self.instance
        if inst is not None:
            self.record = FunctionRecord(
                benchmark=spec.name,
                name=inst.name,
                hash=spec.name,
                config=SebsFunctionConfig(timeout=int(spec.timeout_s), memory=spec.memory_mb),
                triggers=[SebsTrigger(url=inst.sebs_url)],
                instance_id=inst.container_id,
                url=inst.sebs_url,
                port=inst.host_port,
                function=spec.name,
                instance=inst.name,
                index=self.index,
                restarts=self.restarts,
                state="stopping" if self.stopping else inst.lifecycle.state.value,
            )
        elif self.record is not None:
            waiting = self.waiting if gone_state == "restarting" else None
            self.record = msgspec.structs.replace(
                self.record, state=waiting or gone_state, restarts=self.restarts
            )
        return self.record


class Call:
    """One call's place in the pool: the position it was given, once it has one."""

    __slots__ = ("_placed", "cold", "key", "running", "slot")

    def __init__(self) -> None:
        self.slot: Slot | None = None
        #: It was placed on an instance still starting: it waits for a cold start.
        self.cold = False
        #: It reached its instance (the HTTP call began).
        self.running = False
        #: The accounting's name of the container it was placed on.
        self.key: str | None = None
        #: Set when a queued call gets its place (made only for calls that queue).
        self._placed: anyio.Event | None = None

    def wake(self) -> None:
        if self._placed is not None:
            self._placed.set()

    def queued(self) -> None:
        """It waits in the queue: from now on it can be woken."""
        self._placed = anyio.Event()

    async def wait_placed(self) -> None:
        if self.slot is None and self._placed is not None:
            await self._placed.wait()
