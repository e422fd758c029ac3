"""Events between actors: one tagged union of frozen Structs.

The tag of each event is its stable name, the same string the structlog
event uses (``instance.ready``, ...), so logs, ``dep.events()`` and the state
file speak one vocabulary.
"""

from __future__ import annotations

import msgspec

__all__ = (
    "DeploymentEnded",
    "DeploymentEvent",
    "DeploymentStopped",
    "EngineBack",
    "EngineLost",
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
    #: It died while serving an invocation (that call failed with ``reason``).
    during_invocation: bool = False
    #: The crash policy's reading: "invocation", "retired", "stopped", "crash"
    #: (``_deployment._restart``); "" when the deployment was stopping.
    cause: str = ""


class InstanceRestarted(_Event, frozen=True, tag="instance.restarted"):
    function: str
    instance: str
    attempt: int
    backoff_s: float
    #: Why the previous container ended (the death's reason).
    reason: str = ""
    #: Unix time of the replacement's start (after the backoff).
    retry_at: float | None = None


class FunctionFailedEvent(_Event, frozen=True, tag="function.failed"):
    function: str
    restarts: int
    reason: str


class SamplerLagging(_Event, frozen=True, tag="sampler.lagging"):
    instance: str
    late: int
    samples: int


class EngineLost(_Event, frozen=True, tag="engine.unreachable"):
    endpoint: str
    reason: str
    #: Unix time until which the deployment waits for the engine.
    until: float


class EngineBack(_Event, frozen=True, tag="engine.back"):
    endpoint: str
    #: Seconds it was unreachable.
    outage_s: float


class DeploymentEnded(_Event, frozen=True, tag="deployment.ended"):
    """The deployment ended on its own (its engine stayed unreachable too long)."""

    deployment: str
    reason: str


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
    | EngineLost
    | EngineBack
    | DeploymentEnded
    | DeploymentStopped
)
