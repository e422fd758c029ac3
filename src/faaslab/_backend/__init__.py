"""Where containers run: the Backend Protocol and the Docker-host backend.

- :class:`Backend` (``_protocol``) — the one interface to a container engine;
  every engine call in faaslab goes through it.
- :class:`InstanceRequest`, :class:`InstanceHandle`, :class:`InstanceStatus`
  (``_instance``) — instances as a backend sees them: what to run, where it runs.
- :class:`DockerEngine`, :func:`open_engine` (``_docker``) — the Docker host
  (the local socket or ``DOCKER_HOST``), over aiodocker.
- :class:`SwarmEngine`, :func:`open_swarm`, :func:`open_backend` (``_swarm``) —
  Docker Swarm: one service per instance on an attachable overlay, reached
  through gateways (``_gateway``) or host-mode ports; the create body as a
  service spec (``_service``, pure); spreading over nodes (``_placement``, pure);
  the task list read (``_tasks``, pure).
- :func:`start_registry`, :func:`stop_registry` (``_registry``) — Debian's
  ``docker-registry``, started by faaslab, for images on other nodes.
- :class:`Label`, :func:`deployment_filter` (``_labels``) — the labels on
  every object faaslab creates.
- :func:`owner_token`, :func:`owner_alive` (``_owner``) — which process owns
  a deployment, immune to pid reuse.
- :func:`start_engine`, :func:`stop_engine` (``_daemon``) — a ``dockerd`` of
  faaslab's own when no engine answers.
- :func:`build_context`, :func:`input_digest`, :func:`run_with_progress`
  (``_images``) — image builds without a registry: build contexts, input
  hashes, long host commands.
- :func:`run_to_exit` (``_oneshot``) — a container run to completion
  (installs, load checks), its output followed, always removed.
- :func:`hardened_host_config`, :func:`healthcheck`, :func:`loopback_ports`
  (``_hardening``) — the sandbox floor of every container faaslab starts
  (CIS Docker section 5).
"""

from ._daemon import EngineStatus, engine_answers, start_engine, stop_engine
from ._docker import DEFAULT_ENDPOINT, DockerEngine, engine_endpoint, open_engine
from ._hardening import (
    FUNCTION_USER,
    HEALTH_INTERVAL_S,
    PIDS_LIMIT,
    cpu_shares,
    hardened_host_config,
    healthcheck,
    loopback_ports,
)
from ._images import (
    IMAGE_LABEL,
    INPUTS_LABEL,
    BuildProgress,
    ImageStatus,
    build_context,
    build_labels,
    image_status,
    input_digest,
    run_with_progress,
)
from ._instance import InstanceHandle, InstanceRequest, InstanceStatus
from ._labels import Label, deployment_filter
from ._oneshot import OneShotResult, run_to_exit
from ._owner import owner_alive, owner_token, process_start_time, wait_owner_gone
from ._placement import eligible_nodes, node_matches, spread_node
from ._protocol import Backend, EngineInfo
from ._registry import RegistryStatus, parse_registry_address, start_registry, stop_registry
from ._service import ServiceSpec, service_spec
from ._swarm import SwarmEngine, open_backend, open_swarm
from ._tasks import NodeTask

__all__ = (
    "DEFAULT_ENDPOINT",
    "FUNCTION_USER",
    "HEALTH_INTERVAL_S",
    "IMAGE_LABEL",
    "INPUTS_LABEL",
    "PIDS_LIMIT",
    "Backend",
    "BuildProgress",
    "DockerEngine",
    "EngineInfo",
    "EngineStatus",
    "ImageStatus",
    "InstanceHandle",
    "InstanceRequest",
    "InstanceStatus",
    "Label",
    "NodeTask",
    "OneShotResult",
    "RegistryStatus",
    "ServiceSpec",
    "SwarmEngine",
    "build_context",
    "build_labels",
    "cpu_shares",
    "deployment_filter",
    "eligible_nodes",
    "engine_answers",
    "engine_endpoint",
    "hardened_host_config",
    "healthcheck",
    "image_status",
    "input_digest",
    "loopback_ports",
    "node_matches",
    "open_backend",
    "open_engine",
    "open_swarm",
    "owner_alive",
    "owner_token",
    "parse_registry_address",
    "process_start_time",
    "run_to_exit",
    "run_with_progress",
    "service_spec",
    "spread_node",
    "start_engine",
    "start_registry",
    "stop_engine",
    "stop_registry",
    "wait_owner_gone",
)
