"""A deployment's instance positions, per function, and their snapshots (no I/O).

A :class:`Slot` is one instance position: the container serving there now
(if any), its restart history, the cancel scope of its supervisor, and the
state file's entry for the last container it held. A :class:`FunctionPool`
holds a function's slots and counters.
"""

from __future__ import annotations

import anyio
import msgspec

from .._function import Instance
from .._spec import FunctionSpec
from .._state import FunctionRecord, SebsFunctionConfig, SebsTrigger

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
    state: str
    calls: int
    in_flight: int
    restarts: int


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


class Slot:
    """One instance position of a function: the current container, and its history."""

    __slots__ = ("done", "index", "instance", "record", "restart_times", "restarts", "scope")

    def __init__(self, index: int) -> None:
        self.index = index
        self.instance: Instance | None = None
        self.restarts = 0
        #: Monotonic times of its recent unexpected deaths (``_restart``).
        self.restart_times: tuple[float, ...] = ()
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
            state=inst.lifecycle.state.value if inst else "restarting",
            calls=inst.calls if inst else 0,
            in_flight=inst.in_flight if inst else 0,
            restarts=self.restarts,
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
                self.record, state=gone_state, restarts=self.restarts
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
