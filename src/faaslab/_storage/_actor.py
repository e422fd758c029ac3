"""The Storage actor: ``open_storage`` starts or reaches the S3 server, yields :class:`Storage`.

For a container kind it creates the data volume and the server container
(labels, loopback-only port, hardened), starts it, and waits until an
authenticated S3 call succeeds while watching for an early exit; the error
carries the container's last log lines. Leaving the block for any reason
(cancellation included) removes the container, and the volume unless
``keep``, under a shielded, bounded scope.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import structlog
from miniopy_async.api import Minio

from .._backend import Backend, InstanceRequest, Label
from .._errors import EngineError, FaaslabError, StorageError
from .._spec import StorageSpec
from ._client import S3Client, open_minio
from ._options import external_credentials
from ._server import (
    MINIO_IMAGE,
    NETWORK_ALIAS,
    S3_PORT,
    ServerRecipe,
    container_config,
    minio_recipe,
    seaweedfs_recipe,
)

__all__ = ("Storage", "open_storage")

log = structlog.get_logger()

Progress = Callable[[str], None]

#: Bound on one engine step of setting up or tearing down (create, remove).
ENGINE_STEP_S = 30.0
#: SIGTERM grace when the data is kept (a clean shutdown flushes it).
STOP_GRACE_S = 5.0
PULL_BOUND_S = 300.0
#: Bound on one readiness probe: a server that accepts but never answers must not hang it.
PROBE_TIMEOUT_S = 2.0


class Storage(S3Client):
    """A deployment's object storage: where it is, its keys, and the host-side client.

    ``host_endpoint`` is what the host uses (``127.0.0.1:PORT``);
    ``function_address`` what function containers use (``storage:9000`` on the
    deployment network, or the external endpoint's ``host:port``).
    """

    def __init__(
        self,
        minio: Minio,
        *,
        kind: str,
        deployment_id: str,
        host_endpoint: str,
        function_address: str,
        access_key: str,
        secret_key: str,
        container_id: str | None = None,
        volume: str | None = None,
        version: str = "",
        keep: bool = False,
    ) -> None:
        super().__init__(host_endpoint, access_key, secret_key, minio)
        self.kind = kind
        self.deployment_id = deployment_id
        self.function_address = function_address
        self.container_id = container_id
        self.volume = volume
        self.version = version
        self.keep = keep
        #: Set by SeBS input generation: the benchmarks bucket and its prefixes.
        self.benchmarks_bucket: str | None = None
        self.input_buckets: list[str] = []
        self.output_buckets: list[str] = []

    @property
    def host_endpoint(self) -> str:
        return self.address

    @property
    def host_port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def function_env(self) -> dict[str, str]:
        """The environment that SeBS's storage helper reads inside a function."""
        return {
            "MINIO_ADDRESS": self.function_address,
            "MINIO_ACCESS_KEY": self.access_key,
            "MINIO_SECRET_KEY": self.secret_key,
        }

    def benchmarks_bucket_name(self) -> str:
        """The bucket SeBS inputs go to: one per deployment, a valid S3 name."""
        slug = re.sub(r"[^a-z0-9-]+", "-", self.deployment_id.lower()).strip("-") or "x"
        return f"faaslab-benchmarks-{slug}"[:63].rstrip("-")

    def record_benchmark_buckets(self, bucket: str, inputs: list[str], outputs: list[str]) -> None:
        """Remember the benchmarks bucket and prefixes (they go into :meth:`describe`)."""
        self.benchmarks_bucket = bucket
        # In order, once each: inputs may be generated again for the same benchmark.
        self.input_buckets = list(dict.fromkeys([*self.input_buckets, *inputs]))
        self.output_buckets = list(dict.fromkeys([*self.output_buckets, *outputs]))

    def describe(self) -> dict[str, Any]:
        """The deployment file's ``storage`` entry.

        SeBS's keys (its ``S3CompatibleConfig``/``MinioConfig`` in
        ``sebs/storage/config.py``, written into the local platform's
        ``out.json`` by ``sebs/local/deployment.py``) keep their meaning, so
        scripts reading SeBS's file read this one: ``type`` stays ``"minio"``
        (the S3 dialect SeBS dispatches on) and ``kind`` names the real server;
        ``address`` is what the host reaches, ``external_address`` what
        functions reach.
        """
        return {
            "type": "minio",
            "address": self.host_endpoint,
            "external_address": self.function_address,
            "mapped_port": self.host_port if self.container_id else -1,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "instance_id": self.container_id or "",
            "input_buckets": list(self.input_buckets),
            "output_buckets": list(self.output_buckets),
            "version": self.version,
            "data_volume": self.volume or "",
            "remove_containers": True,
            # faaslab's own, beside SeBS's
            "kind": self.kind,
            "function_address": self.function_address,
            "benchmarks_bucket": self.benchmarks_bucket,
            "keep_data": self.keep,
        }


@asynccontextmanager
async def open_storage(
    engine: Backend,
    spec: StorageSpec,
    *,
    deployment_id: str,
    network: str,
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> AsyncIterator[Storage | None]:
    """Start or reach the deployment's object storage; yield it (None for kind ``none``).

    ``network`` must exist: the server joins it with the alias ``storage``.
    ``command`` replaces the server's arguments (debugging, tests).
    """
    say = progress or (lambda _: None)
    if spec.kind == "none":
        yield None
        return
    if spec.kind == "external":
        async with _open_external(spec, deployment_id) as external:
            yield external
        return
    access_key, secret_key = secrets.token_hex(10), secrets.token_hex(20)
    recipe = (seaweedfs_recipe if spec.kind == "seaweedfs" else minio_recipe)(
        access_key, secret_key
    )
    if recipe.image == MINIO_IMAGE:
        await _ensure_minio_image(engine, say)
    else:
        await engine.require_image(recipe.image)
    name = f"faaslab-{deployment_id}-storage"
    labels = {Label.DEPLOYMENT: deployment_id, Label.ROLE: "storage"}
    bound = log.bind(deployment=deployment_id, kind=recipe.kind)
    volume_made = False
    container_id = ""  # the backend's instance id
    try:
        started = time.monotonic()
        say(f"starting storage ({recipe.kind} {recipe.version})")
        # Shielded: a create cancelled mid-request may still happen on the
        # engine, and then we would not know what to remove.
        with anyio.CancelScope(shield=True), anyio.fail_after(ENGINE_STEP_S):
            await engine.create_volume(name, labels)
            volume_made = True
            request = InstanceRequest(
                name=name,
                alias=NETWORK_ALIAS,
                network=network,
                port=S3_PORT,
                container=container_config(
                    recipe, deployment_id=deployment_id, network=network, volume=name,
                    command=command,
                ),
                # A clean stop only matters when the data stays (as in _teardown).
                stop_grace_s=STOP_GRACE_S if spec.keep else 1.0,
            )  # fmt: skip
            container_id = await engine.create_instance(request)
        try:
            with anyio.fail_after(spec.ready_timeout_s):
                handle = await engine.start_instance(container_id, request)
        except TimeoutError:
            raise StorageError(
                f"the storage server ({recipe.kind}) did not start running within "
                f"{spec.ready_timeout_s:g} s"
            ) from None
        except EngineError as exc:
            raise StorageError(f"the storage server ({recipe.kind}) cannot run: {exc}") from exc
        endpoint = f"{handle.host}:{handle.port}"
        async with open_minio(endpoint, access_key, secret_key) as minio:
            storage = Storage(
                minio,
                kind=recipe.kind,
                deployment_id=deployment_id,
                host_endpoint=endpoint,
                function_address=f"{NETWORK_ALIAS}:{S3_PORT}",
                access_key=access_key,
                secret_key=secret_key,
                container_id=handle.container_id,
                volume=name,
                version=recipe.version,
                keep=spec.keep,
            )
            await _wait_ready(engine, container_id, storage, recipe, spec.ready_timeout_s)
            elapsed = time.monotonic() - started
            bound.info("storage.ready", endpoint=storage.host_endpoint, start_s=round(elapsed, 3))
            say(f"storage ready at {storage.host_endpoint} in {elapsed:.1f} s")
            yield storage
    finally:
        with anyio.CancelScope(shield=True):
            await _teardown(engine, container_id, name if volume_made else None, keep=spec.keep)


@asynccontextmanager
async def _open_external(spec: StorageSpec, deployment_id: str) -> AsyncIterator[Storage]:
    access_key, secret_key = external_credentials()
    address = spec.address
    assert address is not None  # the spec checked it
    host = address.rpartition(":")[0]
    if _is_loopback(host):
        log.warning(
            "storage.external_loopback",
            endpoint=address,
            hint="function containers cannot reach the host's loopback; only the host side "
            "will work. Give an address the containers can reach.",
        )
    async with open_minio(address, access_key, secret_key) as minio:
        storage = Storage(
            minio,
            kind="external",
            deployment_id=deployment_id,
            host_endpoint=address,
            function_address=address,
            access_key=access_key,
            secret_key=secret_key,
        )
        try:
            with anyio.fail_after(spec.ready_timeout_s):
                await storage.check()
        except TimeoutError:
            raise StorageError(
                f"the external storage at {address} did not answer within "
                f"{spec.ready_timeout_s:g} s"
            ) from None
        log.info("storage.ready", deployment=deployment_id, kind="external", endpoint=address)
        yield storage


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _ensure_minio_image(engine: Backend, say: Progress) -> None:
    if await engine.image_labels(MINIO_IMAGE) is not None:
        return
    say(f"pulling {MINIO_IMAGE}")
    try:
        with anyio.fail_after(PULL_BOUND_S):
            await engine.pull_image(MINIO_IMAGE)
    except (EngineError, TimeoutError) as exc:
        raise StorageError(
            f"storage kind 'minio' needs the image {MINIO_IMAGE}, which the engine does not "
            f"have and cannot pull here ({exc or 'timed out'}); use --storage seaweedfs "
            "(built offline by `python -m faaslab images build`)"
        ) from exc


async def _wait_ready(
    engine: Backend, instance_id: str, storage: Storage, recipe: ServerRecipe, timeout_s: float
) -> None:
    """Until an authenticated S3 call succeeds, watching the server: an exit fails fast."""
    deadline = time.monotonic() + timeout_s
    outcome: dict[str, Any] = {}

    async with anyio.create_task_group() as tg:

        async def poll() -> None:
            outcome["ready"], outcome["last"] = await _probe_until(storage, deadline)
            tg.cancel_scope.cancel()

        async def watch() -> None:
            outcome["exit"] = await engine.wait_instance(instance_id)
            tg.cancel_scope.cancel()

        tg.start_soon(poll)
        tg.start_soon(watch)

    if outcome.get("ready"):
        return
    logs = await engine.instance_logs(instance_id, tail=30)
    if "exit" in outcome:
        message = (
            f"the storage server ({recipe.kind}) exited with code {outcome['exit']} "
            "before it was ready"
        )
    else:
        message = (
            f"the storage server ({recipe.kind}) did not answer an authenticated S3 call "
            f"within {timeout_s:g} s (last: {outcome.get('last') or 'no answer'})"
        )
    if logs.strip():
        message += "\n--- last storage log lines ---\n" + logs.rstrip()
    raise StorageError(message)


async def _probe_until(storage: Storage, deadline: float) -> tuple[bool, str]:
    """Probe with ``list buckets`` until it succeeds or the deadline passes."""
    delay = 0.02
    last = ""
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            with anyio.fail_after(min(PROBE_TIMEOUT_S, remaining)):
                await storage.check()
            return True, ""
        except (StorageError, TimeoutError) as exc:
            last = str(exc) or type(exc).__name__
        # The server gives no signal when it is ready: poll, bounded by the deadline.
        await anyio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)
    return False, last


async def _teardown(engine: Backend, container_id: str, volume: str | None, *, keep: bool) -> None:
    """Remove the container (a clean stop first when the data stays), then the volume."""
    remove_volume = volume is not None and not keep
    try:
        with anyio.fail_after(STOP_GRACE_S + 2 * ENGINE_STEP_S):
            if container_id:
                if keep:
                    await engine.stop_instance(container_id, STOP_GRACE_S)
                await engine.remove_instance(container_id)
            if remove_volume:
                assert volume is not None
                await engine.remove_volume(volume)
    except (FaaslabError, TimeoutError) as exc:
        log.warning("storage.teardown_retry", container=container_id[:12], error=str(exc))
        with anyio.move_on_after(ENGINE_STEP_S):
            if container_id:
                await engine.remove_instance(container_id)
            if remove_volume:
                assert volume is not None
                await engine.remove_volume(volume)
