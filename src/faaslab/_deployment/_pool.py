"""A deployment's instance positions, per function, and their snapshots (no I/O).

A :class:`Slot` is one instance position: the container serving there now
(if any), its crash history and what it is doing between containers (backing
off until when, waiting for the engine), the cancel scope of its supervisor,
and the state file's entry for the last container it held. A
:class:`FunctionPool` holds a function's slots and counters.
"""

from __future__ import annotations

import anyio
import msgspec

from .._function import Instance
from .._spec import FunctionSpec
from .._state import FunctionRecord, SebsFunctionConfig, SebsTrigger
from ._restart import CrashHistory

__all__ = (
    "DeploymentStatistics",
    "FunctionPool",
    "FunctionStatistics",
    "InstanceStatistics",
    "Slot",
)


class InstanceStatistics(msgspec.Struct, frozen=True):
    name: str
    container_id: str | None
    url: str | None
    #: The container's lifecycle state, or between containers: "starting",
    #: "backoff" (waiting for ``retry_at``), "engine-unreachable", "failed".
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


class FunctionStatistics(msgspec.Struct, frozen=True):
    name: str
    failed: bool
    instances: list[InstanceStatistics]
    invocations: int
    errors: int


class DeploymentStatistics(msgspec.Struct, frozen=True):
    deployment_id: str
    uptime_s: float
    functions: list[FunctionStatistics]
    events_dropped: int
    #: Unix time the engine stopped answering (None while it answers), and
    #: until when the deployment waits for it.
    engine_unreachable_since: float | None = None
    engine_wait_until: float | None = None
    #: Outages ridden out so far.
    engine_outages: int = 0
    #: Why the deployment ended on its own, once it has.
    ended_reason: str | None = None


class Slot:
    """One instance position of a function: the current container, and its history."""

    __slots__ = (
        "crashes",
        "done",
        "ends",
        "host_port",
        "index",
        "instance",
        "last_exit",
        "phase",
        "record",
        "restarts",
        "retry_at",
        "scope",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.instance: Instance | None = None
        self.restarts = 0
        #: Its crashes, for the backoff and the user's bound (``_restart``).
        self.crashes = CrashHistory()
        #: Ends by cause ("invocation", "crash", ...), for status.
        self.ends: dict[str, int] = {}
        #: What it does while no container serves: "starting", "backoff", ...
        self.phase = "starting"
        #: Unix time of the next attempt while backing off.
        self.retry_at: float | None = None
        self.last_exit: str | None = None
        #: The host port of its last container, kept by a replacement after an engine restart.
        self.host_port: int | None = None
        #: Cancelling it stops this position's supervisor (and its container).
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        #: The state file's entry for the last container here (kept after it ends).
        self.record: FunctionRecord | None = None

    def statistics(self, function: str) -> InstanceStatistics:
        inst = self.instance
        return InstanceStatistics(
            name=f"{function}-{self.index}",
            container_id=inst.container_id if inst else None,
            url=inst.sebs_url if inst else None,
            state=inst.lifecycle.state.value if inst else self.phase,
            calls=inst.calls if inst else 0,
            in_flight=inst.in_flight if inst else 0,
            restarts=self.restarts,
            retry_at=self.retry_at if inst is None else None,
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
                state=inst.lifecycle.state.value,
            )
        elif self.record is not None:
            self.record = msgspec.structs.replace(
                self.record,
                state=self.phase if gone_state == "restarting" else gone_state,
                restarts=self.restarts,
            )
        return self.record


class FunctionPool:
    """A function's instance positions and counters."""

    __slots__ = ("errors", "failed", "invocations", "slots", "spec")

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.slots = [Slot(i) for i in range(spec.instances)]
        #: Why the function was given up, once it is.
        self.failed: str | None = None
        self.invocations = 0
        self.errors = 0

    def instances(self) -> list[Instance | None]:
        return [slot.instance for slot in self.slots]

    def statistics(self) -> FunctionStatistics:
        return FunctionStatistics(
            name=self.spec.name,
            failed=self.failed is not None,
            instances=[slot.statistics(self.spec.name) for slot in self.slots],
            invocations=self.invocations,
            errors=self.errors,
        )

    def records(self, stopping: bool) -> list[FunctionRecord]:
        gone = "failed" if self.failed is not None else ("stopped" if stopping else "restarting")
        found = (slot.refresh_record(self.spec, gone) for slot in self.slots)
        return [record for record in found if record is not None]
