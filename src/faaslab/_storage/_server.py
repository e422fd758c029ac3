"""The storage server's container: what runs (a recipe per kind) and how (no I/O here).

SeaweedFS facts that shape the recipe (``weed mini``, 4.48):

- credentials are enforced when ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
  are in its environment;
- ``-s3.autoCreateBucket`` defaults to on: off, so that a missing bucket is an
  error as with MinIO (and SeBS functions behave the same on both);
- ``-ip`` is what its components advertise to each other (loopback inside the
  container), ``-ip.bind`` where they listen (everywhere, so that functions on
  the deployment network reach S3 at ``storage:9000``);
- its gRPC unix sockets go to ``$TMPDIR`` whatever the flags say, so ``/tmp``
  is a small tmpfs and the root filesystem stays read-only;
- it runs without any capability (checked: no ``CAP_*`` needed for a
  root-owned volume on ``/data``);
- its S3 port answers ``GET /healthz`` without credentials; no ``weed``
  subcommand can probe it (they exit 0 whether the server answers or not),
  so the image carries a static busybox for the health check's ``wget``.

Its master, volume and filer ports listen on the deployment network too
(``weed mini`` has one bind address for all components; ``-whiteList``
breaks its internal gRPC). They do not check S3 credentials, but the only
containers on that network are the deployment's functions, which are handed
the credentials anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .._backend import Label, hardened_host_config, healthcheck, loopback_ports
from .._spec import StorageSpec
from ._image import BUSYBOX_PATH, storage_image

__all__ = (
    "MINIO_IMAGE",
    "NETWORK_ALIAS",
    "S3_PORT",
    "ServerRecipe",
    "container_config",
    "minio_recipe",
    "seaweedfs_recipe",
)

S3_PORT = 9000
#: Functions reach the storage as ``storage:9000`` on the deployment network.
NETWORK_ALIAS = "storage"
MINIO_IMAGE = "minio/minio"


class ServerRecipe(msgspec.Struct, frozen=True, kw_only=True):
    """What one kind of S3 server needs to run in a container."""

    kind: str
    image: str
    version: str
    command: list[str]
    env: dict[str, str]
    #: Root filesystem read-only, with a tmpfs on /tmp (when the server allows it).
    read_only: bool
    #: The health check's command, run in the container (Docker's ``CMD`` form).
    health: list[str]


def seaweedfs_recipe(access_key: str, secret_key: str) -> ServerRecipe:
    image = storage_image()
    return ServerRecipe(
        kind="seaweedfs",
        image=image,
        version=image.rpartition(":")[2],
        command=[
            "mini",
            "-dir=/data",
            "-ip=127.0.0.1",
            "-ip.bind=0.0.0.0",
            f"-s3.port={S3_PORT}",
            "-s3.autoCreateBucket=false",
            # Off: what S3 users do not need, and phoning home.
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=128",
            "-volume.preStopSeconds=0",  # a faster stop
        ],
        env={
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "TMPDIR": "/tmp",
        },
        read_only=True,
        health=[
            BUSYBOX_PATH,
            "wget",
            "-q",
            "-T",
            "4",
            "-O",
            "/dev/null",
            f"http://127.0.0.1:{S3_PORT}/healthz",
        ],
    )


def minio_recipe(access_key: str, secret_key: str) -> ServerRecipe:
    return ServerRecipe(
        kind="minio",
        image=MINIO_IMAGE,
        version="latest",
        command=["server", "/data", "--address", f":{S3_PORT}", "--quiet"],
        env={"MINIO_ROOT_USER": access_key, "MINIO_ROOT_PASSWORD": secret_key},
        # MinIO keeps its own state under /data; its image is not checked read-only here.
        read_only=False,
        # MinIO's documented container health check.
        health=["mc", "ready", "local"],
    )


def container_config(
    recipe: ServerRecipe,
    *,
    deployment_id: str,
    network: str,
    volume: str,
    spec: StorageSpec | None = None,
    command: list[str] | None = None,
    host_port: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The engine's create-container body for the storage server (pure, testable).

    ``spec`` gives the memory and CPU limits; ``command`` replaces the
    recipe's arguments (debugging, tests); ``host_port`` asks for that host
    port (the server recreated after an engine restart keeps its address).
    """
    spec = spec or StorageSpec()
    host: dict[str, Any] = {
        **hardened_host_config(
            memory_mb=spec.memory_mb,
            cpus=spec.cpus,
            tmp_mb=64 if recipe.read_only else None,
            read_only=recipe.read_only,
        ),
        "Binds": [f"{volume}:/data"],
        # Only on loopback, on a port the engine picks: nothing outside this
        # machine reaches the storage, and parallel deployments never clash.
        "PortBindings": loopback_ports(S3_PORT, host_port),
        "NetworkMode": network,
    }
    return {
        "Image": recipe.image,
        "Cmd": list(command if command is not None else recipe.command),
        "Env": [f"{k}={v}" for k, v in recipe.env.items()],
        "Labels": {
            **(labels or {}),
            Label.DEPLOYMENT: deployment_id,
            Label.ROLE: "storage",
            "faaslab.storage": recipe.kind,
        },
        "ExposedPorts": {f"{S3_PORT}/tcp": {}},
        "Healthcheck": healthcheck(recipe.health, start_period_s=spec.ready_timeout_s),
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": [NETWORK_ALIAS]}}},
    }
