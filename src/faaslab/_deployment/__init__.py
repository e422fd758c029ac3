"""The deployment: assembly, the Deployment actor, its pool, routing and policies.

- :func:`open_deployment` (``_open``) — everything before the first instance
  (engine, network, packages and requirements, storage, SeBS inputs), then
  the actor, then the final sweep by label.
- :class:`Deployment`, :func:`run_deployment` (``_actor``) — the actor: the
  one task group, supervision of every instance position, invocations,
  events, checkpoints, the ordered stop.
- ``_pool`` — a function's pool: the scaling policy it follows, its FIFO
  queue, its snapshots (no I/O); ``_slot`` — one instance position and one
  call's place in it.
- ``_scaling`` — the scaling policies: ``fixed``, ``keep-alive`` and ATC'20's
  ``hybrid-histogram`` behind one protocol (:func:`make_policy`; pure).
- ``_accounting`` — a pool's counters from its events: cold starts, instances
  alive over time, idle instance-seconds (:class:`PoolStatistics`; pure).
- ``_routing`` — :func:`pick`, the instance a fixed pool gives a call (pure);
  ``Router``, the bounded wait it had before the pool queued calls itself.
- ``_restart`` — the crash policy: each end's cause, the CrashLoopBackOff-like
  backoff, the user's bound (pure).
- ``_outage`` — riding out the engine's loss: one watch, restore, the bound.
- ``_prepare`` — packages and requirements of every function, before any container.
- ``_recovery`` — deployments whose supervisor died (or that ended on their
  own): find, stop, report; check that the shared host sampler dropped them.
"""

from ._accounting import PoolAccounting, PoolStatistics
from ._actor import Deployment, DeploymentParts, run_deployment
from ._open import open_deployment
from ._pool import DeploymentStatistics, FunctionStatistics
from ._prepare import PreparationProgress
from ._recovery import DeploymentOnEngine, find_deployments, remove_deployment, stop_orphaned
from ._scaling import (
    Decision,
    InstanceView,
    PoolView,
    ScalingPolicy,
    make_policy,
)
from ._slot import InstanceStatistics

__all__ = (
    "Decision",
    "Deployment",
    "DeploymentOnEngine",
    "DeploymentParts",
    "DeploymentStatistics",
    "FunctionStatistics",
    "InstanceStatistics",
    "InstanceView",
    "PoolAccounting",
    "PoolStatistics",
    "PoolView",
    "PreparationProgress",
    "ScalingPolicy",
    "find_deployments",
    "make_policy",
    "open_deployment",
    "remove_deployment",
    "run_deployment",
    "stop_orphaned",
)
