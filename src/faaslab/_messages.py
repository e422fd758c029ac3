"""Events between actors: one tagged union of frozen Structs.

The tag of each event is its stable name, the same string the structlog
event uses (``instance.ready``, ...), so logs, ``dep.events()`` and the state
file speak one vocabulary.
"""

from __future__ import annotations

import msgspec

__all__ = (
    "DeploymentEvent",
    "DeploymentStopped",
    "FunctionFailedEvent",
    "InstanceExited",
    "InstanceReady",
    "InstanceRestarted",
    "InstanceStartFailed",
    "InstanceStarting",
    "InstanceStopping",
    "SamplerLagging",
)


class _Event(msgspec.Struct, frozen=True, tag_field="event", kw_only=True):
    #: Unix time (s) when the event happened.
    at: float


class InstanceStarting(_Event, frozen=True, tag="instance.starting"):
    function: str
    instance: str
    #: Why: "deploy", "call" (a call found no free instance), "policy" (min
    #: instances, a pre-warm, queued calls) or "restart".
    reason: str = ""


class InstanceStopping(_Event, frozen=True, tag="instance.stopping"):
    """The function's scaling policy stops an idle instance."""

    function: str
    instance: str
    container_id: str
    #: Seconds it had been idle.
    idle_s: float
    policy: str


class InstanceStartFailed(_Event, frozen=True, tag="instance.start_failed"):
    """An instance started on demand never became ready (its waiting calls get the error)."""

    function: str
    instance: str
    reason: str


class InstanceReady(_Event, frozen=True, tag="instance.ready"):
    function: str
    instance: str
    container_id: str
    url: str
    #: Seconds from create to /alive answering.
    start_s: float


class InstanceExited(_Event, frozen=True, tag="instance.exited"):
    function: str
    instance: str
    container_id: str
    exit_code: int
    oom_killed: bool
    #: True when faaslab asked for it (stop, timeout replacement).
    expected: bool
    reason: str


class InstanceRestarted(_Event, frozen=True, tag="instance.restarted"):
    function: str
    instance: str
    attempt: int
    backoff_s: float


class FunctionFailedEvent(_Event, frozen=True, tag="function.failed"):
    function: str
    restarts: int
    reason: str


class SamplerLagging(_Event, frozen=True, tag="sampler.lagging"):
    instance: str
    late: int
    samples: int


class DeploymentStopped(_Event, frozen=True, tag="deployment.stopped"):
    deployment: str


DeploymentEvent = (
    InstanceStarting
    | InstanceReady
    | InstanceStopping
    | InstanceStartFailed
    | InstanceExited
    | InstanceRestarted
    | FunctionFailedEvent
    | SamplerLagging
    | DeploymentStopped
)
