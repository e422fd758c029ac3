"""The Storage actor: ``open_storage`` starts or reaches the S3 server, yields :class:`Storage`.

For a container kind it creates the data volume and the server container
(labels, loopback-only port, hardened), starts it, and waits until an
authenticated S3 call succeeds while watching for an early exit; the error
carries the container's last log lines. Leaving the block for any reason
(cancellation included) removes the container, and the volume unless
``keep``, under a shielded, bounded scope.

After its engine restarted (which stops every container), the deployment
calls :meth:`Storage.recover`: the server is created again on the same
volume (its data kept), with the same keys and, where it is free, the same
host port.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import structlog
from miniopy_async.api import Minio

from .._backend import Backend, Label
from .._errors import StorageError
from .._spec import StorageSpec
from ._client import S3Client, open_minio
from ._container import pull_if_missing, run_server, wait_server_ready
from ._options import external_credentials
from ._server import (
    MINIO_IMAGE,
    NETWORK_ALIAS,
    S3_PORT,
    container_config,
    minio_recipe,
    seaweedfs_recipe,
)

__all__ = ("Storage", "open_storage")

log = structlog.get_logger()

Progress = Callable[[str], None]


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
        recreate: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        super().__init__(host_endpoint, access_key, secret_key, minio)
        # Creates and starts the server container again on its host port,
        # waits until it is ready, returns its id: how recover() brings it back.
        self._recreate = recreate
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

    async def recover(self) -> None:
        """Bring the server back after its engine lost it: same volume, keys, host port.

        The old container (stopped by the engine's restart) is removed first.
        The host port must be free again: functions do not care
        (they use ``storage:9000``), but the host's client and the deployment
        file name it, so a taken port fails the recovery (an EngineError).
        """
        if self._recreate is None:
            return  # external, or nothing faaslab runs
        self.container_id = await self._recreate()
        log.info("storage.recovered", deployment=self.deployment_id, port=self.host_port)

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
    labels: Mapping[str, str] | None = None,
) -> AsyncIterator[Storage | None]:
    """Start or reach the deployment's object storage; yield it (None for kind ``none``).

    ``network`` must exist: the server joins it with the alias ``storage``.
    ``command`` replaces the server's arguments (debugging, tests). ``labels``
    (the deployment's owner and state file) go on the container and volume.
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
        await pull_if_missing(
            engine,
            MINIO_IMAGE,
            say,
            what="storage kind 'minio'",
            instead="use --storage seaweedfs (built offline by `python -m faaslab images build`)",
        )
    else:
        await engine.require_image(recipe.image)
    name = f"faaslab-{deployment_id}-storage"
    labels = {**(labels or {}), Label.DEPLOYMENT: deployment_id, Label.ROLE: "storage"}
    bound = log.bind(deployment=deployment_id, kind=recipe.kind)
    started = time.monotonic()
    say(f"starting storage ({recipe.kind} {recipe.version})")

    def config(host_port: int | None) -> dict[str, Any]:
        return container_config(
            recipe, deployment_id=deployment_id, network=network, volume=name,
            spec=spec, command=command, host_port=host_port, labels=labels,
        )  # fmt: skip

    async def wait_ready(storage: Storage, instance_id: str) -> None:
        await wait_server_ready(
            engine,
            instance_id,
            storage.check,
            server=f"the storage server ({recipe.kind})",
            call="an authenticated S3 call",
            logs_label="storage",
            timeout_s=spec.ready_timeout_s,
        )

    async with run_server(
        engine, name=name, alias=NETWORK_ALIAS, network=network, labels=labels, config=config,
        port=S3_PORT, keep=spec.keep, ready_timeout_s=spec.ready_timeout_s, what="storage",
    ) as server:  # fmt: skip

        async def recreate() -> str:
            await server.recreate()
            await wait_ready(storage, server.instance_id)
            return server.container_id

        async with open_minio(server.endpoint, access_key, secret_key) as minio:
            storage = Storage(
                minio,
                kind=recipe.kind,
                deployment_id=deployment_id,
                host_endpoint=server.endpoint,
                function_address=f"{NETWORK_ALIAS}:{S3_PORT}",
                access_key=access_key,
                secret_key=secret_key,
                container_id=server.container_id,
                volume=name,
                version=recipe.version,
                keep=spec.keep,
                recreate=recreate,
            )
            await wait_ready(storage, server.instance_id)
            elapsed = time.monotonic() - started
            bound.info("storage.ready", endpoint=storage.host_endpoint, start_s=round(elapsed, 3))
            say(f"storage ready at {storage.host_endpoint} in {elapsed:.1f} s")
            yield storage


@asynccontextmanager
async def _open_external(spec: StorageSpec, deployment_id: str) -> AsyncIterator[Storage]:
    access_key, secret_key = external_credentials()
    address = spec.address
    assert address is not None  # the spec checked it
    function_address = spec.function_address or address
    if _is_loopback(function_address.rpartition(":")[0]):
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
            function_address=function_address,
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
