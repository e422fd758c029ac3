"""Opening a deployment: everything before the first instance, and the final sweep.

``open_deployment`` connects to the engine, checks the image, creates the
deployment's network, builds packages and installs requirements
(``_prepare``), starts the storage actor and, when a function needs one or
the spec asks, the NoSQL actor with the benchmarks' tables, and generates
SeBS inputs, then
hands the parts over to the Deployment actor (``_actor.run_deployment``),
which starts the instances in its task group. On the way out, whatever the
reason, the deployment stops in order and a sweep by label removes anything
a crash or an ill-timed cancellation left behind.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import aiohttp
import anyio
import structlog

from .._backend import (
    Backend,
    Label,
    SwarmEngine,
    deployment_filter,
    open_backend,
    owner_token,
)
from .._errors import FaaslabError
from .._function import TimingConnector
from .._sampling import token_digest
from .._sebs import SebsBenchmark, deployment_tables, generate_inputs
from .._spec import DeploymentSpec
from .._state import SupervisorRecord, check_writable
from .._storage import NoSQL, nosql_server_kind, open_nosql, open_storage
from ._actor import Deployment, DeploymentParts, run_deployment
from ._prepare import PreparationProgress, image_of, prepare_functions
from ._swarm import NodeSamplers, instance_nodes, open_node_samplers

__all__ = ("open_deployment",)

log = structlog.get_logger()


async def _sweep(
    engine: Backend, deployment_id: str, network_id: str, remove: bool, keep: frozenset[str]
) -> None:
    """Remove whatever of the deployment is still on the engine, then its network.

    With ``remove`` false (containers kept for debugging) nothing is touched;
    the volumes of the roles in ``keep`` ("storage", "nosql") stay.

    The supervisors and the storage actor remove their own objects; this is
    the safety net for anything a crash or a cancellation at the wrong moment
    left behind.
    """
    if not remove:
        return  # kept for debugging, network included, so `docker start` still works
    label = deployment_filter(deployment_id)
    try:
        for service in await engine.services_labeled(label):
            log.warning("deployment.swept", deployment=deployment_id, service=service["ID"][:12])
            await engine.remove_service(service["ID"])
        for container in await engine.containers_labeled(label):
            log.warning(
                "deployment.swept", deployment=deployment_id, container=container["Id"][:12]
            )
            await engine.remove_container(container["Id"])
        for volume in await engine.volumes_labeled(label):
            if (volume.get("Labels") or {}).get(Label.ROLE) in keep:
                continue
            log.warning("deployment.swept", deployment=deployment_id, volume=volume["Name"])
            await engine.remove_volume(volume["Name"])
        await engine.remove_network(network_id)
        for secret in await engine.secrets_labeled(label):
            await engine.remove_secret(secret["ID"])
        # A network recreated after an engine restart has another id.
        for network in await engine.networks_labeled(label):
            await engine.remove_network(network["Id"])
    except FaaslabError as exc:
        # Never mask the error that ended the deployment; `faaslab gc` finishes this.
        log.error("deployment.sweep_failed", deployment=deployment_id, error=str(exc))


@asynccontextmanager
async def _open_nosql_for(
    engine: Backend,
    spec: DeploymentSpec,
    deployment_id: str,
    network: str,
    benchmarks: Mapping[str, SebsBenchmark],
    labels: Mapping[str, str],
) -> AsyncIterator[NoSQL | None]:
    """The NoSQL store when a function needs one or the spec asks for one, else None."""
    needed_by = [name for name, benchmark in benchmarks.items() if benchmark.needs_nosql]
    kind = nosql_server_kind(spec.nosql, needed_by)
    if kind is None:
        yield None
        return
    tables = deployment_tables(deployment_id, benchmarks)
    async with open_nosql(
        engine,
        spec.nosql,
        kind,
        deployment_id=deployment_id,
        network=network,
        tables=tables,
        labels=labels,
    ) as nosql:
        yield nosql


@asynccontextmanager
async def _node_samplers(
    engine: Backend,
    spec: DeploymentSpec,
    deployment_id: str,
    network: str,
    labels: dict[str, str],
) -> AsyncIterator[NodeSamplers | None]:
    """On Swarm with sampling on: the samplers on every node; else None."""
    if not spec.sampling or not isinstance(engine, SwarmEngine):
        yield None
        return
    async with open_node_samplers(
        engine,
        deployment_id=deployment_id,
        network=network,
        labels=labels,
        timeout_s=spec.swarm.sampler_timeout_s,
    ) as samplers:
        yield samplers


@asynccontextmanager
async def open_deployment(
    spec: DeploymentSpec,
    *,
    endpoint: str | None = None,
    state_path: str | Path | None = None,
    supervisor: SupervisorRecord | None = None,
    progress: PreparationProgress | None = None,
) -> AsyncIterator[Deployment]:
    """Start a deployment and yield it; everything is removed when the block exits.

    With ``state_path`` the deployment file is written (atomically) at every
    change that matters and checkpointed about every second; the raw memory
    profile then lives beside it, so that it survives the process.
    ``progress`` is told about pip installs and input uploads as they go.
    """
    deployment_id = spec.deployment_id or secrets.token_hex(4)
    path = Path(os.path.abspath(state_path)) if state_path is not None else None
    # The host sampler samples our containers only for whoever presents this.
    sampler_token = secrets.token_hex(32)
    labels = {
        Label.DEPLOYMENT: deployment_id,
        Label.OWNER: owner_token(),
        Label.SAMPLER_TOKEN: token_digest(sampler_token),
    }
    if path is not None:
        labels[Label.STATE] = str(path)
    if path is not None:
        check_writable(path)
    with tempfile.TemporaryDirectory(prefix=f"faaslab-{deployment_id}-") as tmp:
        workdir = path.with_name(f"{path.name}.d") if path is not None else Path(tmp)
        workdir.mkdir(mode=0o700, exist_ok=True)
        async with open_backend(spec.backend, endpoint, spec.swarm) as engine:
            for image in sorted({image_of(spec, function) for function in spec.functions}):
                await engine.require_image(image)
            network_name = f"faaslab-{deployment_id}"
            network_id = await engine.create_network(network_name, labels)
            try:
                prepared, benchmarks = await prepare_functions(
                    engine, spec, workdir, progress
                )
                # Refused here, before any server starts: nosql "none" for a
                # benchmark that needs it, a table declared twice.
                nosql_server_kind(
                    spec.nosql, [n for n, b in benchmarks.items() if b.needs_nosql]
                )
                deployment_tables(deployment_id, benchmarks)
                async with (
                    open_storage(
                        engine,
                        spec.storage,
                        deployment_id=deployment_id,
                        network=network_name,
                        labels=labels,
                    ) as storage,
                    _open_nosql_for(
                        engine, spec, deployment_id, network_name, benchmarks, labels
                    ) as nosql,
                ):
                    # In the spec's order, so that a one-benchmark deployment's
                    # input is inputs[0], as in SeBS's out.json.
                    inputs, input_functions = [], []
                    for function in spec.functions:
                        benchmark = benchmarks.get(function.name)
                        if benchmark is not None and benchmark.can_generate_input:
                            on_upload = None
                            if progress is not None:
                                on_upload = partial(progress.uploaded, function.name)
                            inputs.append(
                                await generate_inputs(
                                    benchmark, storage, nosql=nosql, on_upload=on_upload
                                )
                            )
                            input_functions.append(function.name)
                    # Timing: each call's connect time, for SeBS's http_startup.
                    connector = TimingConnector(limit=0, keepalive_timeout=60)
                    async with (
                        aiohttp.ClientSession(connector=connector) as session,
                        _node_samplers(engine, spec, deployment_id, network_name, labels) as nodes,
                    ):
                        swarm = engine if isinstance(engine, SwarmEngine) else None
                        parts = DeploymentParts(
                            spec=spec,
                            engine=engine,
                            deployment_id=deployment_id,
                            session=session,
                            network=network_name,
                            labels=labels,
                            workdir=workdir,
                            state_path=path,
                            supervisor=supervisor,
                            prepared=prepared,
                            storage=storage,
                            nosql=nosql,
                            benchmarks=benchmarks,
                            inputs=inputs,
                            input_functions=input_functions,
                            node_samplers=nodes,
                            spread=instance_nodes(swarm, spec) if swarm else {},
                            engine_node=swarm.node_id if swarm else "",
                            sampler_token=sampler_token,
                        )
                        async with run_deployment(parts) as deployment:
                            yield deployment
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(60):
                    await _sweep(
                        engine,
                        deployment_id,
                        network_id,
                        spec.remove_containers,
                        keep=frozenset(
                            role
                            for role, kept in (
                                ("storage", spec.storage.keep),
                                ("nosql", spec.nosql.keep),
                            )
                            if kept
                        ),
                    )
