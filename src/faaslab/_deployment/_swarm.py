"""What a deployment on Docker Swarm needs beyond a Docker host's: node samplers, spreading.

- **Samplers on every node** (:func:`open_node_samplers`): a global service
  whose task on each node runs the same sampling worker (``_sampling._node``)
  with the host's ``/sys/fs/cgroup`` mounted read-only, authenticated by a
  per-deployment token kept in a Swarm secret. Each running task is reached
  as any instance is (a gateway, or its host-mode port) and connected as a
  :func:`~faaslab._sampling.remote_sampling`; the Sampler actors register
  their containers there by id (from the task list) and the batches flow
  into the same aggregation, profile and reports as on one host. A node
  whose sampler task does not run is named in :attr:`NodeSamplers.missing`,
  and its instances fall back to the stats API, said per instance.
- **Spreading** (:func:`instance_nodes`): which node each instance of a
  function is pinned to (``_backend._placement``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgspec
import structlog
from anyio.abc import TaskGroup, TaskStatus

from .._backend import InstanceRequest, Label, NodeTask, SwarmEngine, service_spec, spread_node
from .._errors import FaaslabError, SamplingError, SpecError
from .._runtime import ensure_sampler_image
from .._sampling import SAMPLER_PORT, SamplingClient, SamplingProcess, remote_sampling
from .._spec import DeploymentSpec

__all__ = ("NodeSamplers", "instance_nodes", "open_node_samplers")

log = structlog.get_logger()

#: Where the node sampler sees the host's cgroup tree.
CGROUP_MOUNT = "/host/cgroup"
TOKEN_FILE = "faaslab-sampler-token"
#: The node sampler's own limits: the worker and a small asyncio bridge.
SAMPLER_MEMORY = 128 * 1024 * 1024


class NodeSampler(msgspec.Struct, frozen=True, kw_only=True):
    """One node's sampler task and where the host reaches it."""

    node: str
    host: str
    port: int
    container_id: str


class NodeSamplers:
    """The deployment's samplers, one per node that runs one."""

    def __init__(self, token: str) -> None:
        self._token = token
        #: Per node id: the connection to its sampler (a SamplingProcess over TCP).
        self.by_node: dict[str, SamplingProcess] = {}
        #: Per node id: why it has no sampler (its instances use the stats API).
        self.missing: dict[str, str] = {}
        self.tasks: dict[str, NodeSampler] = {}

    def add(self, sampler: NodeSampler) -> None:
        self.tasks[sampler.node] = sampler
        self.by_node[sampler.node] = remote_sampling(sampler.host, sampler.port, self._token)

    def for_node(self, node: str) -> tuple[SamplingProcess | None, str | None]:
        """The node's sampler, or None and why there is none."""
        sampler = self.by_node.get(node)
        if sampler is not None:
            return sampler, None
        return None, self.missing.get(node, f"node {node[:12]} runs no sampler task")

    @property
    def priority(self) -> str | None:
        """The scheduling each node's worker got, e.g. ``nice -20`` (one value when all agree)."""
        found = {node[:12]: s.priority for node, s in self.by_node.items() if s.priority}
        if not found:
            return None
        values = set(found.values())
        if len(values) == 1:
            return values.pop()
        return "; ".join(f"{node}: {value}" for node, value in sorted(found.items()))

    async def start_all(self, tg: TaskGroup) -> None:
        """Connect to every node's sampler in ``tg``; a node that does not answer is missing."""
        for node, sampler in list(self.by_node.items()):
            try:
                await tg.start(self._run, node, sampler)
            except SamplingError as exc:
                log.warning("sampler.node_unreachable", node=node[:12], error=str(exc))
                del self.by_node[node]
                self.missing[node] = f"its sampler did not answer: {exc}"

    async def _run(
        self, node: str, sampler: SamplingProcess, *, task_status: TaskStatus[SamplingClient]
    ) -> None:
        try:
            await sampler.run(task_status=task_status)
        except SamplingError as exc:
            if sampler.priority is None:  # never said hello: tg.start() reports it
                raise
            # A lost node must not end the deployment: its subscriptions end
            # ("sampling process died") and the reports say so per instance.
            log.error("sampler.node_lost", node=node[:12], error=str(exc))


def instance_nodes(engine: SwarmEngine, spec: DeploymentSpec) -> dict[str, list[str]]:
    """Per function: the nodes its instances are spread over ([] = Swarm decides)."""
    nodes: dict[str, list[str]] = {}
    for function in spec.functions:
        eligible = engine.ready_nodes(function.placement)
        if not eligible:
            raise SpecError(
                f"placement: no ready node of the swarm satisfies {function.placement} "
                f"for {function.name!r}"
            )
        nodes[function.name] = eligible if function.spread else []
    return nodes


def pinned_node(nodes: Mapping[str, list[str]], function: str, index: int) -> str | None:
    """The node instance ``index`` of ``function`` is pinned to (None: Swarm decides)."""
    return spread_node(nodes.get(function, []), index)


def _sampler_request(
    deployment_id: str, network: str, image: str, labels: Mapping[str, str]
) -> InstanceRequest:
    container: dict[str, Any] = {
        "Image": image,
        "Env": [
            f"FAASLAB_SAMPLER_TOKEN_FILE=/run/secrets/{TOKEN_FILE}",
            f"FAASLAB_SAMPLER_PORT={SAMPLER_PORT}",
            f"FAASLAB_CGROUP_ROOT={CGROUP_MOUNT}",
        ],
        "Labels": {**labels, Label.DEPLOYMENT: deployment_id, Label.ROLE: "sampler"},
        "User": "0:0",  # root without capabilities: it reads the token secret (0400)
        "HostConfig": {
            "Binds": [f"/sys/fs/cgroup:{CGROUP_MOUNT}:ro"],
            # Root without capabilities but SYS_NICE (the worker's real-time priority).
            "CapDrop": ["ALL"],
            "CapAdd": ["CAP_SYS_NICE"],
            "ReadonlyRootfs": True,
            "Memory": SAMPLER_MEMORY,
            "PidsLimit": 256,
        },
    }
    return InstanceRequest(
        name=f"faaslab-{deployment_id}-sampler",
        alias="sampler",
        network=network,
        port=SAMPLER_PORT,
        container=container,
        stop_grace_s=1.0,  # it holds nothing worth a clean stop
    )


async def _wait_node_tasks(
    engine: SwarmEngine, service_id: str, network: str, nodes: list[str], timeout_s: float
) -> tuple[dict[str, NodeTask], dict[str, str]]:
    """Until every node's sampler task runs or has failed (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        running: dict[str, NodeTask] = {}
        failed: dict[str, str] = {}
        for task in reversed(await engine.service_tasks(service_id, network)):
            if task.state == "running" and task.container_id and task.overlay_address:
                running[task.node] = task
                failed.pop(task.node, None)
            elif task.state in ("failed", "rejected") and task.node not in running:
                why = f"its sampler task {task.state}: {task.message}"
                if task.node == engine.node_id and task.container_id:
                    logs = (await engine.container_logs(task.container_id, tail=8)).strip()
                    why += f"; its log: {logs[-600:]}" if logs else ""
                failed[task.node] = why
        if all(node in running or node in failed for node in nodes):
            return running, failed
        if time.monotonic() > deadline:
            for node in nodes:
                if node not in running and node not in failed:
                    failed[node] = f"its sampler task did not run within {timeout_s:g} s"
            return running, failed
        await anyio.sleep(0.1)


@asynccontextmanager
async def open_node_samplers(
    engine: SwarmEngine,
    *,
    deployment_id: str,
    network: str,
    labels: Mapping[str, str],
    timeout_s: float,
) -> AsyncIterator[NodeSamplers]:
    """Run the deployment's sampler on every node; remove service, gateways and secret on exit."""
    image = await engine.service_image(await ensure_sampler_image(engine))
    token = secrets.token_hex(16)
    samplers = NodeSamplers(token)
    owned = {**labels, Label.DEPLOYMENT: deployment_id, Label.ROLE: "sampler"}
    secret_id = await engine.create_secret(
        f"faaslab-{deployment_id}-sampler-token", token.encode(), owned
    )
    service_id = ""
    gateways: list[str] = []
    try:
        request = _sampler_request(deployment_id, network, image, labels)
        spec = service_spec(
            request,
            image=image,
            publish_host_mode=engine.publish_host,
            global_mode=True,
            secrets=[
                {
                    "SecretID": secret_id,
                    "SecretName": f"faaslab-{deployment_id}-sampler-token",
                    "File": {"Name": TOKEN_FILE, "UID": "0", "GID": "0", "Mode": 0o400},
                }
            ],
        )
        with anyio.CancelScope(shield=True):
            service_id = await engine.create_service(spec.body)
        running, failed = await _wait_node_tasks(
            engine, service_id, network, engine.ready_nodes(), timeout_s
        )
        samplers.missing.update(failed)
        for node, task in running.items():
            host, port, gateway = await engine.expose_task(
                task, SAMPLER_PORT, f"faaslab-{deployment_id}-sampler-{node[:12]}-gw", network,
                owned,
            )  # fmt: skip
            if gateway is not None:
                gateways.append(gateway)
            found = NodeSampler(node=node, host=host, port=port, container_id=task.container_id)
            samplers.add(found)
        for node, reason in failed.items():
            log.warning("sampler.node_missing", node=node[:12], reason=reason)
        yield samplers
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(60):
            await _remove(engine, service_id, gateways, secret_id)


async def _remove(
    engine: SwarmEngine, service_id: str, gateways: list[str], secret_id: str
) -> None:
    try:
        local = []
        if service_id:
            local = [
                t.container_id
                for t in await engine.service_tasks(service_id)
                if t.node == engine.node_id and t.container_id
            ]
            await engine.remove_service(service_id)
        for gateway in gateways:
            await engine.remove_container(gateway)
        for container_id in local:
            await engine.wait_gone(container_id)
        # A secret goes once no task uses it any more.
        deadline = time.monotonic() + 30
        while True:
            try:
                await engine.remove_secret(secret_id)
                return
            except FaaslabError:
                if time.monotonic() > deadline:
                    raise
            await anyio.sleep(0.2)
    except FaaslabError as exc:
        log.error("sampler.teardown_failed", error=str(exc))
