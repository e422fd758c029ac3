"""The lifecycle of one function instance, as a transition table with no I/O.

::

    created ──► starting ──► ready ⇄ busy
       │           │           │      │
       └───────────┴─────┬─────┴──────┘
                         ▼
                      stopping ──► stopped
    any state but stopped ──► failed ──► stopping

``failed`` records that the instance died or never became ready; the
container still has to be removed, hence ``failed → stopping``. Anything not
in the table is a bug and raises :class:`LifecycleError`.
"""

from __future__ import annotations

import enum

from .._errors import LifecycleError

__all__ = ("TRANSITIONS", "InstanceState", "Lifecycle", "LifecycleError")


class InstanceState(enum.Enum):
    CREATED = "created"
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


S = InstanceState

TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    S.CREATED: frozenset({S.STARTING, S.STOPPING, S.FAILED}),
    S.STARTING: frozenset({S.READY, S.STOPPING, S.FAILED}),
    S.READY: frozenset({S.BUSY, S.STOPPING, S.FAILED}),
    S.BUSY: frozenset({S.READY, S.STOPPING, S.FAILED}),
    S.STOPPING: frozenset({S.STOPPED, S.FAILED}),
    S.STOPPED: frozenset(),
    S.FAILED: frozenset({S.STOPPING}),
}




class Lifecycle:
    """The current state of one instance and the only way to change it."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = S.CREATED

    @property
    def state(self) -> InstanceState:
        return self._state

    def can(self, target: InstanceState) -> bool:
        return target in TRANSITIONS[self._state]

    def to(self, target: InstanceState) -> InstanceState:
        """Move to ``target``; return the state left."""
        if target not in TRANSITIONS[self._state]:
            raise LifecycleError(
                f"illegal instance transition {self._state.value} -> {target.value}"
            )
        previous, self._state = self._state, target
        return previous

    @property
    def serving(self) -> bool:
        return self._state in (S.READY, S.BUSY)

    @property
    def finished(self) -> bool:
        return self._state in (S.STOPPED, S.FAILED)
