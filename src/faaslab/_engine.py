"""The Docker engine, seen through the few calls faaslab needs.

Everything that talks to the Docker Engine API goes through :class:`Engine`,
so errors are translated once (aiodocker's ``DockerError`` and aiohttp's
connection errors become faaslab errors naming the endpoint) and the actors
never see the client library.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import aiohttp
import structlog

from ._errors import EngineError, EngineUnreachable, ImageMissing

__all__ = ("DEFAULT_ENDPOINT", "Engine", "EngineInfo", "engine_endpoint", "open_engine")

log = structlog.get_logger()

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"

#: Bound on how long a plain API call may take; image builds and waits get their own.
API_TIMEOUT_S = 60.0


def engine_endpoint() -> str:
    """The endpoint faaslab will use: ``DOCKER_HOST`` or the local socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT


class EngineInfo:
    """What the engine says about itself (from ``/version`` and ``/info``)."""

    __slots__ = ("api_version", "cgroup_driver", "cgroup_version", "endpoint", "version")

    def __init__(self, endpoint: str, version: Mapping[str, Any], info: Mapping[str, Any]) -> None:
        self.endpoint = endpoint
        self.version = str(version.get("Version", "?"))
        self.api_version = str(version.get("ApiVersion", "?"))
        self.cgroup_driver = str(info.get("CgroupDriver", "?"))
        self.cgroup_version = str(info.get("CgroupVersion", "?"))


class Engine:
    """A connected Docker engine. Obtain one with :func:`open_engine`."""

    def __init__(self, client: aiodocker.Docker, endpoint: str) -> None:
        self.client = client
        self.endpoint = endpoint

    # -- errors --------------------------------------------------------------

    def translate(self, exc: BaseException, doing: str) -> Exception:
        """Turn a client-library error into a faaslab error."""
        if isinstance(exc, aiohttp.ClientConnectionError | FileNotFoundError | ConnectionError):
            return EngineUnreachable(self.endpoint, str(exc) or type(exc).__name__)
        if isinstance(exc, aiodocker.DockerError) and exc.status == 900:
            # aiodocker reports connection failures as a pseudo-status 900,
            # wrapping the OS's reason in brackets: keep only that reason.
            reason = re.search(r"\[([^\[\]]+)\]+$", str(exc.message))
            return EngineUnreachable(
                self.endpoint, reason.group(1) if reason else str(exc.message)
            )
        if isinstance(exc, aiodocker.DockerError):
            message = exc.message if isinstance(exc.message, str) else str(exc.message)
            return EngineError(f"{doing}: {message} (HTTP {exc.status})")
        return EngineError(f"{doing}: {exc}")

    # -- engine --------------------------------------------------------------

    async def ping(self) -> None:
        """Check that the engine answers (``/version``: it also settles the API version)."""
        try:
            await self.client.version()
        except Exception as exc:
            raise self.translate(exc, "ping") from exc

    async def info(self) -> EngineInfo:
        try:
            version = await self.client.version()
            info = await self.client.system.info()
        except Exception as exc:
            raise self.translate(exc, "engine info") from exc
        return EngineInfo(self.endpoint, version, info)

    # -- images --------------------------------------------------------------

    async def inspect_image(self, image: str) -> dict[str, Any] | None:
        """The image's inspect document, or None when the engine does not have it."""
        try:
            data = await self.client.images.inspect(image)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise self.translate(exc, f"inspect image {image}") from exc
        except Exception as exc:
            raise self.translate(exc, f"inspect image {image}") from exc
        return dict(data)

    async def image_labels(self, image: str) -> dict[str, str] | None:
        """Labels of ``image``, or None when the engine does not have it."""
        data = await self.inspect_image(image)
        if data is None:
            return None
        labels = (data.get("Config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    async def require_image(self, image: str) -> None:
        if await self.image_labels(image) is None:
            raise ImageMissing(image)

    async def list_images(self, reference: str) -> list[dict[str, Any]]:
        try:
            images: list[dict[str, Any]] = await self.client.images.list(
                filters={"reference": [reference]}
            )
        except Exception as exc:
            raise self.translate(exc, "list images") from exc
        return images

    async def remove_image(self, image: str) -> None:
        try:
            await self.client.images.delete(image, force=True)
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self.translate(exc, f"remove image {image}") from exc

    # -- containers ----------------------------------------------------------

    async def create_container(self, config: Mapping[str, Any], name: str) -> str:
        """Create a container; return its id. A missing image becomes ImageMissing."""
        try:
            container = await self.client.containers.create(config=dict(config), name=name)
        except aiodocker.DockerError as exc:
            if exc.status == 404 and "image" in str(exc.message).lower():
                raise ImageMissing(str(config.get("Image"))) from exc
            raise self.translate(exc, f"create container {name}") from exc
        except Exception as exc:
            raise self.translate(exc, f"create container {name}") from exc
        return str(container.id)

    async def start_container(self, container_id: str) -> None:
        try:
            await self.client.containers.container(container_id).start()
        except Exception as exc:
            raise self.translate(exc, f"start container {container_id[:12]}") from exc

    async def inspect_container(self, container_id: str) -> dict[str, Any] | None:
        """The container's inspect document, or None when it no longer exists."""
        try:
            data = await self.client.containers.container(container_id).show()
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise self.translate(exc, f"inspect container {container_id[:12]}") from exc
        except Exception as exc:
            raise self.translate(exc, f"inspect container {container_id[:12]}") from exc
        return dict(data)

    async def container_logs(self, container_id: str, tail: int = 30) -> str:
        """The last ``tail`` lines of a container's output ("" when it is gone)."""
        try:
            lines = await self.client.containers.container(container_id).log(
                stdout=True, stderr=True, tail=tail
            )
        except aiodocker.DockerError:
            return ""
        return "".join(lines)

    async def wait_container(self, container_id: str) -> int:
        """Wait until the container exits; return its exit status."""
        try:
            result = await self.client.containers.container(container_id).wait(
                timeout=aiohttp.ClientTimeout(total=None)
            )
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return -1
            raise self.translate(exc, f"wait for container {container_id[:12]}") from exc
        return int(result.get("StatusCode", -1))

    async def stop_container(self, container_id: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (the engine's own ladder)."""
        try:
            await self.client.containers.container(container_id).stop(t=max(0, int(grace_s)))
        except aiodocker.DockerError as exc:
            if exc.status not in (304, 404):  # already stopped, or gone
                raise self.translate(exc, f"stop container {container_id[:12]}") from exc

    async def kill_container(self, container_id: str) -> None:
        try:
            await self.client.containers.container(container_id).kill()
        except aiodocker.DockerError as exc:
            if exc.status not in (404, 409):  # gone, or not running
                raise self.translate(exc, f"kill container {container_id[:12]}") from exc

    async def remove_container(self, container_id: str) -> None:
        """Force-remove a container and its anonymous volumes; gone already is fine."""
        try:
            await self.client.containers.container(container_id).delete(force=True, v=True)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return
            if exc.status == 409 and "in progress" in str(exc.message):
                return  # another remover got there first
            raise self.translate(exc, f"remove container {container_id[:12]}") from exc

    async def memory_usage(self, container_id: str) -> int | None:
        """The container's memory usage from the stats API, or None when it is gone.

        ``one-shot`` (API 1.41+) answers at once instead of waiting for the
        daemon's next two samples; aiodocker has no parameter for it.
        """
        try:
            stats = await self.client._query_json(
                f"containers/{container_id}/stats",
                params={"stream": "false", "one-shot": "true"},
            )
        except aiodocker.DockerError as exc:
            if exc.status in (404, 409):
                return None
            raise self.translate(exc, f"stats of container {container_id[:12]}") from exc
        usage = (stats.get("memory_stats") or {}).get("usage")
        return int(usage) if usage is not None else None

    # -- networks and volumes ------------------------------------------------

    async def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        try:
            network = await self.client.networks.create(
                {"Name": name, "Driver": "bridge", "Labels": dict(labels), "CheckDuplicate": True}
            )
        except Exception as exc:
            raise self.translate(exc, f"create network {name}") from exc
        return str(network.id)

    async def remove_network(self, network_id: str) -> None:
        try:
            await aiodocker.networks.DockerNetwork(self.client, network_id).delete()  # type: ignore[no-untyped-call]
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self.translate(exc, f"remove network {network_id[:12]}") from exc

    async def remove_volume(self, name: str) -> None:
        try:
            volume = aiodocker.volumes.DockerVolume(self.client, name)  # type: ignore[no-untyped-call]
            await volume.delete(force=True)  # type: ignore[no-untyped-call]
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self.translate(exc, f"remove volume {name}") from exc

    # -- objects found by label ----------------------------------------------

    async def containers_labeled(self, label: str) -> list[dict[str, Any]]:
        """Every container (running or not) carrying ``label`` (``key`` or ``key=value``)."""
        try:
            found = await self.client.containers.list(
                all="1", filters=json.dumps({"label": [label]})
            )
        except Exception as exc:
            raise self.translate(exc, "list containers") from exc
        return [dict(c._container) for c in found]

    async def networks_labeled(self, label: str) -> list[dict[str, Any]]:
        try:
            found = await self.client.networks.list(filters={"label": [label]})
        except Exception as exc:
            raise self.translate(exc, "list networks") from exc
        return list(found)

    async def volumes_labeled(self, label: str) -> list[dict[str, Any]]:
        try:
            found = await self.client.volumes.list(filters={"label": [label]})  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise self.translate(exc, "list volumes") from exc
        return list(found.get("Volumes") or [])

    # -- storage and requirements (appended for the Storage actor and pip) ----

    async def create_volume(self, name: str, labels: Mapping[str, str]) -> str:
        """Create a named local volume; return its name."""
        try:
            volume = await self.client.volumes.create(  # type: ignore[no-untyped-call]
                {"Name": name, "Driver": "local", "Labels": dict(labels)}
            )
        except Exception as exc:
            raise self.translate(exc, f"create volume {name}") from exc
        return str(volume.name)

    async def image_id(self, image: str) -> str | None:
        """The image's content id (``sha256:...``), or None when the engine does not have it."""
        data = await self.inspect_image(image)
        return str(data.get("Id", "")) or None if data is not None else None

    async def pull_image(self, image: str) -> None:
        """Pull ``image`` from its registry; the engine's refusal becomes an EngineError."""
        try:
            await self.client.images.pull(image)
        except Exception as exc:
            raise self.translate(exc, f"pull image {image}") from exc

    async def follow_logs(self, container_id: str) -> AsyncIterator[str]:
        """The container's output as it comes, line by line, until it exits."""
        pending = ""
        try:
            stream = self.client.containers.container(container_id).log(
                stdout=True, stderr=True, follow=True
            )
            async for chunk in stream:
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    yield line
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self.translate(exc, f"follow logs of {container_id[:12]}") from exc
        except aiohttp.ClientError as exc:
            raise self.translate(exc, f"follow logs of {container_id[:12]}") from exc
        if pending:
            yield pending


@asynccontextmanager
async def open_engine(endpoint: str | None = None) -> AsyncIterator[Engine]:
    """Connect to the engine and check that it answers; close the client on exit.

    Raises :class:`EngineUnreachable` naming the endpoint when nothing answers.
    """
    endpoint = endpoint or engine_endpoint()
    try:
        client = aiodocker.Docker(
            url=endpoint,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            api_version="auto",
        )
    except ValueError as exc:
        raise EngineUnreachable(endpoint, str(exc)) from exc
    engine = Engine(client, endpoint)
    try:
        await engine.ping()
        yield engine
    finally:
        await client.close()
