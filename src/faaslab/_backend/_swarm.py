"""The Docker Swarm backend: instances as one-task services on a swarm.

:class:`SwarmEngine` is a :class:`~._docker.DockerEngine` (a swarm manager
is a Docker engine: image builds, pip containers and probes still run on
it) whose *instances* are Swarm services:

- **one service per instance**, replicas 1, restart condition ``none``:
  each instance has its own name and address, a new instance is a fresh task
  (so ``is_cold`` and cold starts stay exact), and a dead one stays dead
  until faaslab's supervisor decides (Swarm never replaces it behind our
  back). The instance id is the service id; its container is the task's.
- the deployment network is an **attachable overlay**; services join it
  under their alias, endpoint mode ``dnsrr`` (no VIP, no IPVS, no mesh).
- **reaching tasks**: with ``publish = "gateway"`` a gateway container
  (``_gateway``) on this engine forwards a port published on
  ``swarm.address`` only; with ``publish = "host"`` the task publishes its
  port in host mode on its node (every interface of that node) and is
  reached at the node's advertise address. Nothing is ever published
  through the ingress mesh.
- **images**: on one node a service names its image by id (``sha256:...``),
  which the engine never tries to pull (a tag makes every task try the
  registry first, a 20 s DNS timeout offline); on several nodes every image
  is pushed to ``swarm.registry`` and named by digest, so no task depends on
  an image one node holds.
- **placement**: the function's constraints, plus a pin to one node when
  spreading (``_placement``); an instance with a named volume (the storage
  server) is pinned to this engine's node, where the volume is.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import anyio
import structlog

from .._errors import EngineError, ImageMissing, InstanceStartError, SpecError
from .._spec import SwarmSpec
from ._docker import DockerEngine, connect_client, engine_endpoint, open_engine
from ._gateway import GATEWAY_PORT, gateway_config
from ._instance import InstanceHandle, InstanceRequest, InstanceStatus
from ._labels import Label
from ._placement import eligible_nodes
from ._service import service_spec
from ._tasks import TERMINAL, NodeTask, exit_code, parse_task

__all__ = ("NodeTask", "SwarmEngine", "open_backend", "open_swarm")

log = structlog.get_logger()

#: What gateways run: the runtime image (Python 3, stdlib only).
GATEWAY_IMAGE = "faaslab/python:3.11"
#: How often task states are polled (the API has no task events on 1.41).
POLL_S = 0.1
#: How often the end of a task on another node is looked for (a task here is waited on).
REMOTE_POLL_S = 1.0
#: Bound on a removed service's container going away.
REMOVE_WAIT_S = 30.0


class SwarmEngine(DockerEngine):
    """A swarm manager; obtain one with :func:`open_swarm`."""

    def __init__(self, client: aiodocker.Docker, endpoint: str, settings: SwarmSpec) -> None:
        super().__init__(client, endpoint)
        self.settings = settings
        #: This engine's own node id.
        self.node_id = ""
        #: The swarm's nodes (the engine's Node objects), as last listed.
        self.nodes: list[dict[str, Any]] = []
        #: Whether tasks publish in host mode (else through gateways).
        self.publish_host = False
        self._images: dict[str, str] = {}
        self._image_locks: dict[str, anyio.Lock] = {}
        self._gateways: dict[str, str] = {}
        self._containers: dict[str, tuple[str, str]] = {}
        self._gaps_reported: set[str] = set()

    @property
    def api_version(self) -> tuple[int, int]:
        """The Engine API version the client settled on (``ping`` settles it)."""
        major, _, minor = str(self._client.api_version).lstrip("v").partition(".")
        try:
            return int(major), int(minor)
        except ValueError:
            return (1, 41)  # not settled yet: the oldest faaslab knows, the safe side

    # -- the swarm ---------------------------------------------------------------

    async def join(self) -> None:
        """Check that this engine manages a swarm; learn its nodes and the publish mode."""
        try:
            info = await self._client.system.info()
        except Exception as exc:
            raise self._translate(exc, "engine info") from exc
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise EngineError(
                f"the engine at {self.endpoint} is not a swarm manager (swarm state "
                f"{swarm.get('LocalNodeState') or 'inactive'}): run `docker swarm init "
                "--advertise-addr ADDRESS` there, or join it to a swarm as a manager "
                "(docs/scaling-out.md)"
            )
        self.node_id = str(swarm.get("NodeID", ""))
        await self.refresh_nodes()
        ready = self.ready_nodes()
        publish = self.settings.publish
        self.publish_host = publish == "host" or (publish == "auto" and len(ready) > 1)
        if len(ready) > 1 and self.settings.registry is None:
            raise SpecError(
                f"the swarm has {len(ready)} ready nodes: images must reach them through a "
                "registry: start one with `faaslab registry up --address ADDRESS:PORT` and pass "
                "--registry ADDRESS:PORT (docs/scaling-out.md)"
            )
        log.info(
            "swarm.joined",
            endpoint=self.endpoint,
            node=self.node_id,
            nodes=len(ready),
            publish="host" if self.publish_host else "gateway",
        )

    async def refresh_nodes(self) -> list[dict[str, Any]]:
        try:
            self.nodes = [dict(n) for n in await self._client.nodes.list()]
        except Exception as exc:
            raise self._translate(exc, "list swarm nodes") from exc
        return self.nodes

    def ready_nodes(self, constraints: Sequence[str] = ()) -> list[str]:
        """Ids of the ready, active nodes that satisfy ``constraints``, in a stable order."""
        return eligible_nodes(self.nodes, constraints)

    def _node_addresses(self) -> dict[str, str]:
        return {
            str(n["ID"]): str((n.get("Status") or {}).get("Addr") or "") for n in self.nodes
        }

    # -- images ------------------------------------------------------------------

    async def service_image(self, image: str) -> str:
        """How a service names ``image``: by id on one node, by registry digest on several."""
        # One resolution (and push) per image, however many instances ask at once:
        # concurrent pushes of the same layers race in the registry.
        lock = self._image_locks.setdefault(image, anyio.Lock())
        async with lock:
            cached = self._images.get(image)
            if cached is None:
                cached = self._images[image] = await self._resolve_image(image)
        return cached

    async def _resolve_image(self, image: str) -> str:
        image_id = await self.image_id(image)
        if image_id is None:
            raise ImageMissing(image)
        registry = self.settings.registry
        if registry is None or len(self.ready_nodes()) <= 1:
            reference = image_id
        else:
            reference = await self._push(image, registry)
        return reference

    async def _push(self, image: str, registry: str) -> str:
        """Tag ``image`` into the registry, push it; return ``registry/repo@digest``."""
        repository, _, tag = image.rpartition(":") if ":" in image else (image, "", "latest")
        target = f"{registry}/{repository}"
        started = time.monotonic()
        try:
            await self._client.images.tag(image, target, tag=tag or "latest")
            digest = ""
            auth = base64.urlsafe_b64encode(b"{}").decode()
            async with self._client._query(
                f"images/{target}/push",
                method="POST",
                params={"tag": tag or "latest"},
                headers={"X-Registry-Auth": auth},
                timeout=None,
            ) as response:
                async for line in response.content:
                    if not line.strip():
                        continue
                    message = json.loads(line)
                    if "error" in message:
                        raise EngineError(
                            f"push {target}:{tag} to {registry}: {message['error']} (is the "
                            "registry up, and does every engine trust it: insecure-registries?)"
                        )
                    aux = message.get("aux") or {}
                    digest = str(aux.get("Digest") or digest)
        except aiodocker.DockerError as exc:
            raise self._translate(exc, f"push {image} to {registry}") from exc
        if not digest:
            raise EngineError(f"push {image} to {registry}: the engine reported no digest")
        log.info(
            "swarm.image_pushed",
            image=image,
            registry=registry,
            digest=digest,
            seconds=round(time.monotonic() - started, 2),
        )
        return f"{target}@{digest}"

    # -- networks ----------------------------------------------------------------

    async def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        """An attachable overlay: services join it, and so can a gateway container."""
        try:
            network = await self._client.networks.create(
                {
                    "Name": name,
                    "Driver": "overlay",
                    "Attachable": True,
                    "Labels": dict(labels),
                    "CheckDuplicate": True,
                }
            )
        except Exception as exc:
            raise self._translate(exc, f"create network {name}") from exc
        return str(network.id)

    async def remove_network(self, network_id: str) -> None:
        """Remove it once the last task has left it (Swarm detaches tasks lazily)."""
        deadline = time.monotonic() + REMOVE_WAIT_S
        while True:
            try:
                await super().remove_network(network_id)
                break
            except EngineError as exc:
                if "active endpoints" not in str(exc) or time.monotonic() > deadline:
                    raise
            await anyio.sleep(0.2)
        # The swarm deletes an overlay asynchronously: return once it is gone.
        only = {"filters": json.dumps({"id": [network_id]})}
        while time.monotonic() < deadline:
            if not await self._client._query_json("networks", params=only):
                return
            await anyio.sleep(0.1)

    # -- instances: one service each ---------------------------------------------

    async def create_instance(self, request: InstanceRequest) -> str:
        image = await self.service_image(str(request.container.get("Image")))
        binds = ((request.container.get("HostConfig") or {}).get("Binds")) or []
        # A named volume lives on the node that made it: this engine's.
        on_volume = any(not str(bind).startswith("/") for bind in binds)
        constraints = [f"node.id=={self.node_id}"] if on_volume and not request.node else []
        spec = service_spec(
            request,
            image=image,
            publish_host_mode=self.publish_host,
            constraints=constraints,
            health_start_interval=self.api_version >= (1, 44),
        )
        self._report_gaps(spec.gaps)
        service_id = await self.create_service(spec.body)
        if not self.publish_host:
            try:
                self._gateways[service_id] = await self._create_gateway(
                    f"{request.name}-gw", request.network, request.name, request.port,
                    request.container.get("Labels") or {},
                )  # fmt: skip
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.remove_service(service_id)
                raise
        return service_id

    def _report_gaps(self, gaps: Sequence[str]) -> None:
        new = [gap for gap in gaps if gap not in self._gaps_reported]
        if new:
            self._gaps_reported.update(new)
            log.warning(
                "swarm.sandbox_gap",
                unsupported=new,
                why="a Swarm service cannot carry these container settings on this API",
            )

    async def create_service(self, body: Mapping[str, Any]) -> str:
        try:
            created = await self._client._query_json(
                "services/create", method="POST", data=json.dumps(body)
            )
        except aiodocker.DockerError as exc:
            raise self._translate(exc, f"create service {body.get('Name')}") from exc
        except Exception as exc:
            raise self._translate(exc, f"create service {body.get('Name')}") from exc
        return str(created["ID"])

    async def _create_gateway(
        self, name: str, network: str, target: str, port: int, labels: Mapping[str, str]
    ) -> str:
        image = await self._gateway_image()
        config = gateway_config(
            image=image,
            network=network,
            target_host=target,
            target_port=port,
            address=self.settings.address,
            labels={**labels, Label.ROLE: "gateway"},
        )
        container_id = await self.create_container(config, name=name)
        try:
            await self.start_container(container_id)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.remove_container(container_id)
            raise
        return container_id

    async def _gateway_image(self) -> str:
        """What gateways run: the runtime image (Python 3, stdlib only), by id, on this engine."""
        image_id = await self.image_id(GATEWAY_IMAGE)
        if image_id is None:
            raise ImageMissing(GATEWAY_IMAGE)
        return image_id

    async def gateway_port(self, gateway_id: str) -> int:
        """The host port a gateway publishes (on ``swarm.address``)."""
        data = await self.inspect_container(gateway_id)
        bindings = (((data or {}).get("NetworkSettings") or {}).get("Ports") or {}).get(
            f"{GATEWAY_PORT}/tcp"
        )
        for binding in bindings or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
        raise EngineError(f"gateway {gateway_id[:12]}: the engine published no port")

    async def service_tasks(self, service_id: str, network: str | None = None) -> list[NodeTask]:
        """The service's tasks, newest first."""
        try:
            tasks = await self._client.tasks.list(filters={"service": service_id})
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return []
            raise self._translate(exc, f"tasks of service {service_id[:12]}") from exc
        ordered = sorted(tasks, key=lambda t: str(t.get("CreatedAt", "")), reverse=True)
        addresses = self._node_addresses()
        return [parse_task(task, network, addresses) for task in ordered]

    async def _service_exists(self, service_id: str) -> bool:
        try:
            await self._client.services.inspect(service_id)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return False
            raise self._translate(exc, f"inspect service {service_id[:12]}") from exc
        return True

    async def start_instance(self, instance_id: str, request: InstanceRequest) -> InstanceHandle:
        """Wait for the task to run; return where the host reaches it."""
        delay = POLL_S / 2
        while True:
            tasks = await self.service_tasks(instance_id, request.network)
            task = tasks[0] if tasks else None
            if task is not None and task.state == "running" and task.container_id:
                break
            if task is not None and task.state in TERMINAL:
                raise InstanceStartError(
                    f"{request.alias}: its Swarm task is {task.state}: {task.message}"
                )
            # Backing off: many instances starting at once must not flood the manager.
            await anyio.sleep(delay)
            delay = min(delay * 1.5, 5 * POLL_S)
        self._containers[instance_id] = (task.container_id, task.node)
        if self.publish_host:
            port = task.published.get(request.port)
            await self.refresh_nodes()
            address = self._node_addresses().get(task.node, "")
            if port is None or not address:
                raise InstanceStartError(
                    f"{request.alias}: its task publishes no port in host mode on node "
                    f"{task.node[:12]} (address {address or 'unknown'})"
                )
            host = address
        else:
            port = await self.gateway_port(self._gateways[instance_id])
            host = self.settings.address
            address = self._node_addresses().get(task.node, "")
        return InstanceHandle(
            id=instance_id,
            container_id=task.container_id,
            host=host,
            port=port,
            node=task.node,
            node_address=address,
        )

    def _local_container(self, instance_id: str) -> str | None:
        container_id, node = self._containers.get(instance_id, ("", ""))
        return container_id if container_id and node == self.node_id else None

    async def instance_status(self, instance_id: str) -> InstanceStatus | None:
        # A task container on this node says it first, and exactly (OOM included):
        # the manager learns of its end a moment later.
        local = self._local_container(instance_id)
        data = await self.inspect_container(local) if local else None
        state = (data or {}).get("State") or {}
        if data is not None and not state.get("Running", False):
            return InstanceStatus(
                running=False,
                exit_code=int(state.get("ExitCode", -1)),
                oom_killed=bool(state.get("OOMKilled", False)),
                error=str(state.get("Error") or ""),
            )
        tasks = await self.service_tasks(instance_id)
        if not tasks:
            return InstanceStatus(running=True) if await self._service_exists(instance_id) else None
        task = tasks[0]
        if task.state not in TERMINAL:
            return InstanceStatus(running=True)
        return InstanceStatus(
            running=False, exit_code=exit_code(task.message), error=task.message
        )

    async def wait_instance(self, instance_id: str) -> int:
        local = self._local_container(instance_id)
        if local is not None:
            return await self.wait_container(local)
        while True:
            status = await self.instance_status(instance_id)
            if status is None:
                return -1
            if not status.running:
                return status.exit_code
            await anyio.sleep(REMOTE_POLL_S)

    async def instance_logs(self, instance_id: str, tail: int = 30) -> str:
        text = ""
        try:
            logs: Any = self._client.services.logs(
                instance_id, stdout=True, stderr=True, tail=str(tail)
            )
            logs = await logs
            text = logs if isinstance(logs, str) else ""
        except aiodocker.DockerError:
            pass
        tasks = await self.service_tasks(instance_id)
        if tasks:
            text += f"[swarm task {tasks[0].state}: {tasks[0].message}]\n"
        return text

    async def scale_service(self, service_id: str, replicas: int) -> None:
        try:
            service = await self._client.services.inspect(service_id)
            spec = dict(service["Spec"])
            spec["Mode"] = {"Replicated": {"Replicas": replicas}}
            await self._client._query_json(
                f"services/{service_id}/update",
                method="POST",
                params={"version": str(service["Version"]["Index"])},
                data=json.dumps(spec),
            )
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return
            raise self._translate(exc, f"scale service {service_id[:12]}") from exc

    async def stop_instance(self, instance_id: str, grace_s: float) -> None:
        """Scale to 0: the task gets SIGTERM, then SIGKILL after its grace; the service stays."""
        await self.scale_service(instance_id, 0)
        while True:
            tasks = await self.service_tasks(instance_id)
            if not tasks or tasks[0].state in TERMINAL:
                return
            await anyio.sleep(POLL_S)

    async def kill_instance(self, instance_id: str) -> None:
        local = self._local_container(instance_id)
        if local is not None:
            await self.kill_container(local)
        else:
            await self.scale_service(instance_id, 0)

    async def remove_instance(self, instance_id: str) -> None:
        """Remove the service and its gateway; wait until a task container here is gone."""
        local = self._local_container(instance_id)
        await self.remove_service(instance_id)
        gateway = self._gateways.pop(instance_id, None)
        if gateway is not None:
            await self.remove_container(gateway)
        if local is not None:
            await self.wait_gone(local)
        self._containers.pop(instance_id, None)

    async def wait_gone(self, container_id: str) -> None:
        """Until a container no longer exists (Swarm removes a task's lazily), bounded."""
        deadline = time.monotonic() + REMOVE_WAIT_S
        while await self.inspect_container(container_id) is not None:
            if time.monotonic() > deadline:
                await self.remove_container(container_id)
                return
            await anyio.sleep(POLL_S)

    # -- per-node services (samplers) --------------------------------------------

    async def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        try:
            created = await self._client.secrets.create(
                name, base64.b64encode(data).decode(), b64=True, labels=dict(labels)
            )
        except Exception as exc:
            raise self._translate(exc, f"create secret {name}") from exc
        return str(created["ID"])

    async def expose_task(self, task: NodeTask, port: int, name: str, network: str,
                          labels: Mapping[str, str]) -> tuple[str, int, str | None]:  # fmt: skip
        """Where the host reaches ``port`` of one task: (host, port, gateway container id)."""
        if self.publish_host:
            published = task.published.get(port)
            if published is None or not task.node_address:
                raise EngineError(
                    f"task {task.task_id[:12]} on node {task.node[:12]} publishes no port {port}"
                )
            return task.node_address, published, None
        gateway = await self._create_gateway(name, network, task.overlay_address, port, labels)
        return self.settings.address, await self.gateway_port(gateway), gateway


@asynccontextmanager
async def open_swarm(
    settings: SwarmSpec, endpoint: str | None = None
) -> AsyncIterator[SwarmEngine]:
    """Connect to a swarm manager and check it is one; close the client on exit."""
    endpoint = endpoint or engine_endpoint()
    client = connect_client(endpoint)
    engine = SwarmEngine(client, endpoint, settings)
    try:
        await engine.ping()
        await engine.join()
        yield engine
    finally:
        await client.close()


@asynccontextmanager
async def open_backend(
    kind: str, endpoint: str | None = None, swarm: SwarmSpec | None = None
) -> AsyncIterator[DockerEngine]:
    """The backend a deployment asked for: ``docker`` (this host) or ``swarm``."""
    if kind == "swarm":
        async with open_swarm(swarm or SwarmSpec(), endpoint) as engine:
            yield engine
        return
    async with open_engine(endpoint) as docker:
        yield docker
