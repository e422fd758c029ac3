"""The deployment: assembly, the Deployment actor, its pool, routing and policies.

- :func:`open_deployment` (``_open``) — everything before the first instance
  (engine, network, packages and requirements, storage, SeBS inputs), then
  the actor, then the final sweep by label.
- :class:`Deployment`, :func:`run_deployment` (``_actor``) — the actor: the
  one task group, supervision of every instance position, invocations,
  events, checkpoints, the ordered stop.
- ``_pool`` — instance positions and their snapshots (no I/O).
- ``_routing`` — which instance serves a call (pure :func:`pick`, a bounded wait).
- ``_restart`` — the crash policy: each end's cause, the CrashLoopBackOff-like
  backoff, the user's bound (pure).
- ``_outage`` — riding out the engine's loss: one watch, restore, the bound.
- ``_prepare`` — packages and requirements of every function, before any container.
- ``_recovery`` — deployments whose supervisor died (or that ended on their
  own): find, stop, report; check that the shared host sampler dropped them.
"""

from ._actor import Deployment, DeploymentParts, run_deployment
from ._open import open_deployment
from ._pool import DeploymentStatistics, FunctionStatistics, InstanceStatistics
from ._prepare import PreparationProgress
from ._recovery import DeploymentOnEngine, find_deployments, remove_deployment, stop_orphaned

__all__ = (
    "Deployment",
    "DeploymentOnEngine",
    "DeploymentParts",
    "DeploymentStatistics",
    "FunctionStatistics",
    "InstanceStatistics",
    "PreparationProgress",
    "find_deployments",
    "open_deployment",
    "remove_deployment",
    "run_deployment",
    "stop_orphaned",
)
