"""Instances as a backend sees them: what to run, and how to reach what runs.

The actors above the backend (the Function actor, the storage actor) ask for
*instances*, never for containers or services: a backend turns an
:class:`InstanceRequest` into whatever runs it where it runs (a container on
this host, a one-task service on Docker Swarm, a pod next), and answers with
an :class:`InstanceHandle` saying where the host reaches it.

The request's ``container`` is the sandbox: one description in the Docker
Engine API's create-container shape (image, environment, limits, mounts,
capabilities), written once by the actor that knows what it runs. The
Docker host uses it as it is; Swarm translates it field by field into a
service's ContainerSpec and Resources (``_service``); a Kubernetes backend
would map the same fields onto a pod's container and securityContext.
Everything else a backend must decide — where to publish, which network
alias, placement — is a field of its own here, so no backend has to dig it
out of the body.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ("InstanceHandle", "InstanceRequest", "InstanceStatus")


class InstanceRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One instance to run."""

    #: The engine-side name (unique on the engine: ``faaslab-<deployment>-<instance>``).
    name: str
    #: What the deployment's other members call it on the deployment network.
    alias: str
    #: The deployment network (its name).
    network: str
    #: The port its server listens on inside; the backend makes it reachable from the host.
    port: int
    #: The sandbox, in the Engine API's create-container shape (see the module docstring).
    container: dict[str, Any]
    #: Placement constraints (multi-node backends), e.g. ``node.labels.role==bench``.
    placement: list[str] = []
    #: Pin it to this node id (multi-node backends; spreading decides it).
    node: str | None = None
    #: SIGTERM grace at stop, for backends that fix it when the instance is made.
    stop_grace_s: float = 10.0


class InstanceHandle(msgspec.Struct, frozen=True, kw_only=True):
    """Where a started instance runs and how the host reaches it."""

    #: The backend's own id of the instance (a container id, a service id).
    id: str
    #: The container that runs it: its cgroup, SeBS's ``instance_id``, the reports' key.
    container_id: str
    #: The host reaches the instance's port at ``host:port``.
    host: str
    port: int
    #: The node it runs on ("" for the engine's own host).
    node: str = ""
    #: That node's address ("" for the engine's own host).
    node_address: str = ""


class InstanceStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Whether an instance still runs, and how it ended when it does not."""

    running: bool
    exit_code: int = -1
    oom_killed: bool = False
    #: The backend's own word on why it ended, when it has one (a task's error).
    error: str = ""
