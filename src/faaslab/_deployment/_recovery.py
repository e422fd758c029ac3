"""Deployments whose owner died: find them, stop them, write what was measured.

A supervisor killed with SIGKILL leaves its containers running and its state
file behind; a deployment that ended on its own (its engine unreachable past
the bound) leaves what the engine kept (stopped containers, its network and
volumes). ``stop`` then removes every service, container, network, volume
and secret of the deployment (found by label, not by the possibly stale
file; services first, so Swarm starts nothing new, secrets last, once no task
uses them) and writes the memory statistics from the last checkpoint
completed by the profile file (``_aggregate.salvage``), marked incomplete
with why and how much is lost.

The host sampler is shared and outlives a killed supervisor; it drops the
deployment's files the moment the supervisor's connection closes (the kernel
closes it with the process). ``stop`` checks (bounded) that it holds none of
them any more, and says so when it does.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog

from .._aggregate import MeasurementRecord, MemoryReport, salvage, write_reports
from .._backend import Backend, Label, deployment_filter, owner_alive
from .._errors import EngineError, FaaslabError
from .._sampling import parse_address, sampler_status
from .._state import DeploymentState, SamplingRecord, write_state

__all__ = (
    "DeploymentOnEngine",
    "find_deployments",
    "remove_deployment",
    "sampler_released",
    "stop_orphaned",
)

log = structlog.get_logger()

#: How long the host sampler may take to drop a dead supervisor's files.
SAMPLER_RELEASE_BOUND_S = 5.0
_STATUS_POLL_S = 0.1


class DeploymentOnEngine(msgspec.Struct, frozen=True):
    """What the engine holds of one deployment, from labels alone."""

    deployment_id: str
    owner: str | None
    owner_alive: bool
    state_file: str | None
    containers: int
    running: int
    networks: int
    volumes: int
    #: Swarm services and secrets (0 on a Docker host).
    services: int = 0
    secrets: int = 0


async def find_deployments(engine: Backend) -> list[DeploymentOnEngine]:
    label = deployment_filter()
    grouped: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "owner": None,
            "state": None,
            "containers": 0,
            "running": 0,
            "networks": 0,
            "volumes": 0,
            "services": 0,
            "secrets": 0,
        }
    )
    for kind, found in (
        ("services", await engine.services_labeled(label)),
        ("secrets", await engine.secrets_labeled(label)),
    ):
        for item in found:
            labels = (item.get("Spec") or {}).get("Labels") or {}
            entry = grouped[labels[Label.DEPLOYMENT]]
            entry[kind] += 1
            entry["owner"] = entry["owner"] or labels.get(Label.OWNER)
            entry["state"] = entry["state"] or labels.get(Label.STATE)
    for container in await engine.containers_labeled(label):
        labels = container.get("Labels") or {}
        entry = grouped[labels[Label.DEPLOYMENT]]
        entry["containers"] += 1
        entry["running"] += container.get("State") == "running"
        entry["owner"] = entry["owner"] or labels.get(Label.OWNER)
        entry["state"] = entry["state"] or labels.get(Label.STATE)
    for network in await engine.networks_labeled(label):
        labels = network.get("Labels") or {}
        entry = grouped[labels[Label.DEPLOYMENT]]
        entry["networks"] += 1
        entry["owner"] = entry["owner"] or labels.get(Label.OWNER)
        entry["state"] = entry["state"] or labels.get(Label.STATE)
    for volume in await engine.volumes_labeled(label):
        labels = volume.get("Labels") or {}
        entry = grouped[labels[Label.DEPLOYMENT]]
        entry["volumes"] += 1
        entry["owner"] = entry["owner"] or labels.get(Label.OWNER)
    return [
        DeploymentOnEngine(
            deployment_id=deployment_id,
            owner=entry["owner"],
            owner_alive=owner_alive(entry["owner"]),
            state_file=entry["state"],
            containers=entry["containers"],
            running=entry["running"],
            networks=entry["networks"],
            volumes=entry["volumes"],
            services=entry["services"],
            secrets=entry["secrets"],
        )
        for deployment_id, entry in sorted(grouped.items())
    ]


async def remove_deployment(engine: Backend, deployment_id: str) -> int:
    """Remove every service, container, network, volume and secret of a deployment;
    return how many."""
    label = deployment_filter(deployment_id)
    removed = 0
    for service in await engine.services_labeled(label):
        await engine.remove_service(service["ID"])
        removed += 1
    for container in await engine.containers_labeled(label):
        await engine.remove_container(container["Id"])
        removed += 1
    for network in await engine.networks_labeled(label):
        await _until_free(engine.remove_network, network["Id"])
        removed += 1
    # A swarm deletes an overlay asynchronously: wait until it is gone (bounded).
    deadline = time.monotonic() + IN_USE_WAIT_S
    while time.monotonic() < deadline:
        if not await engine.networks_labeled(label):
            break
        await anyio.sleep(0.1)
    for volume in await engine.volumes_labeled(label):
        await _until_free(engine.remove_volume, volume["Name"])
        removed += 1
    for secret in await engine.secrets_labeled(label):
        await _until_free(engine.remove_secret, secret["ID"])
        removed += 1
    return removed


#: Bound on an object still in use by a task Swarm is removing.
IN_USE_WAIT_S = 30.0


async def _until_free(remove: Callable[[str], Awaitable[None]], name: str) -> None:
    """Remove something a removed service's task may still hold (Swarm lets go lazily)."""
    deadline = time.monotonic() + IN_USE_WAIT_S
    while True:
        try:
            await remove(name)
            return
        except EngineError:
            if time.monotonic() > deadline:
                raise
        await anyio.sleep(0.2)


async def stop_orphaned(
    engine: Backend, state: DeploymentState, state_path: Path, stats_path: Path | None
) -> MemoryReport | None:
    """Stop a deployment whose supervisor is gone (or that ended); write what it measured."""
    await remove_deployment(engine, state.id)
    if state.sampling is not None:
        await sampler_released(state.id, state.sampling)
    report = None
    checkpoint = state.checkpoint
    last_heard = checkpoint.at if checkpoint else state_path.stat().st_mtime
    when = dt.datetime.fromtimestamp(last_heard, dt.UTC).isoformat(timespec="seconds")
    if stats_path is not None and state.sampling is not None:
        records = [
            msgspec.convert(m, MeasurementRecord)
            for m in (checkpoint.measurements if checkpoint else [])
        ]
        profile = Path(state.sampling.profile)
        completed = salvage(
            records,
            profile,
            checkpoint_ns=checkpoint.monotonic_ns if checkpoint else None,
            checkpoint_interval_s=checkpoint.interval_s if checkpoint else 1.0,
        )
        if state.ended_reason is not None:
            # It stopped itself in order: nothing was lost on the way.
            reason = f"the deployment ended on its own: {state.ended_reason}"
            lost: dict[str, int] = {}
        else:
            lost = {c.record.container_id: c.lost_at_most for c in completed}
            pid = state.supervisor.pid if state.supervisor else "?"
            reason = (
                f"the supervisor (pid {pid}) died; statistics are from its last checkpoint "
                f"at {when} and the {sum(c.from_profile for c in completed)} samples the "
                f"profile holds after it; lost: at most {max(lost.values(), default=0)} "
                "samples per container (taken after the last one stored)"
            )
        report = write_reports(
            stats_path,
            profile,
            state.id,
            [c.record for c in completed],
            sampler_priority=state.sampling.priority or None,
            incomplete_reason=reason,
            lost=lost,
            sampler_restarts=state.sampling.restarts,
        )
    write_state(
        state_path,
        msgspec.structs.replace(
            state,
            status="stopped",
            stopped_at=time.time(),
            stats_path=str(stats_path) if report is not None else None,
        ),
    )
    return report



async def sampler_released(
    deployment_id: str, sampling: SamplingRecord, *, bound_s: float = SAMPLER_RELEASE_BOUND_S
) -> bool:
    """Whether the host sampler the deployment used holds none of its files any more.

    Waits up to ``bound_s``: a dead supervisor's files are dropped with its
    connection, and any file ends once its container is removed (the kernel
    removes the cgroup). A sampler that is gone (or was never recorded) holds
    nothing. Logs a warning when files remain.
    """
    if not sampling.address:
        return True
    try:
        address = parse_address(sampling.address)
    except FaaslabError:
        return True  # not an address this faaslab can reach
    files = 0
    with anyio.move_on_after(bound_s):
        while True:
            try:
                status = await sampler_status(address, timeout=bound_s)
            except (FaaslabError, OSError, TimeoutError):
                return True  # exiting or broken: it samples for nobody
            files = status.attached.get(deployment_id, 0) if status is not None else 0
            if files == 0:
                return True
            await anyio.sleep(_STATUS_POLL_S)  # it pushes no events: poll, bounded
    log.warning(
        "recovery.sampler_still_sampling",
        deployment=deployment_id,
        sampler=str(address),
        files=files,
        hint="`faaslab sampler status` shows it; its supervisor may still be alive",
    )
    return False
