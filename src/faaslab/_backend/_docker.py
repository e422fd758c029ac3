"""The Docker-host backend: a local (or ``DOCKER_HOST``) Docker engine.

:class:`DockerEngine` implements the :class:`~._protocol.Backend` Protocol
over aiodocker. Every call to the Docker Engine API goes through it, so
errors are translated once (aiodocker's ``DockerError`` and aiohttp's
connection errors become faaslab errors naming the endpoint) and nothing
above the backend sees the client library.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import structlog

from .._errors import EngineError, EngineUnreachable, ImageBuildError, ImageMissing
from ._instance import InstanceHandle, InstanceRequest, InstanceStatus
from ._protocol import EngineInfo

__all__ = (
    "DEFAULT_ENDPOINT",
    "DockerEngine",
    "connect_client",
    "engine_endpoint",
    "loopback_port",
    "open_engine",
)

log = structlog.get_logger()

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"

#: Bound on how long a plain API call may take; image builds and waits get their own.
API_TIMEOUT_S = 60.0


def engine_endpoint() -> str:
    """The endpoint faaslab will use: ``DOCKER_HOST`` or the local socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT


def loopback_port(data: Mapping[str, Any] | None, port: int) -> int | None:
    """The host port a container's ``port`` is published on (127.0.0.1 or all), from inspect."""
    ports = (((data or {}).get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp")
    for binding in ports or []:
        if binding.get("HostIp") in ("127.0.0.1", "", "0.0.0.0") and binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


class DockerEngine:
    """A connected Docker engine. Obtain one with :func:`open_engine`.

    Instances are containers on this engine, published on 127.0.0.1 by
    their own create body; the instance id is the container id.
    """

    def __init__(self, client: aiodocker.Docker, endpoint: str) -> None:
        self._client = client
        self.endpoint = endpoint

    # -- errors --------------------------------------------------------------

    def _translate(self, exc: BaseException, doing: str) -> Exception:
        """Turn a client-library error into a faaslab error."""
        # A payload cut short is the engine going away mid-answer (a long wait, a stream).
        lost = aiohttp.ClientConnectionError | aiohttp.ClientPayloadError
        if isinstance(exc, lost | FileNotFoundError | ConnectionError):
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
            await self._client.version()
        except Exception as exc:
            raise self._translate(exc, "ping") from exc

    async def info(self) -> EngineInfo:
        try:
            version = await self._client.version()
            info = await self._client.system.info()
        except Exception as exc:
            raise self._translate(exc, "engine info") from exc
        return EngineInfo(
            endpoint=self.endpoint,
            version=str(version.get("Version", "?")),
            api_version=str(version.get("ApiVersion", "?")),
            cgroup_driver=str(info.get("CgroupDriver", "?")),
            cgroup_version=str(info.get("CgroupVersion", "?")),
            architecture=str(info.get("Architecture", "x86_64")),
        )

    # -- images --------------------------------------------------------------

    async def inspect_image(self, image: str) -> dict[str, Any] | None:
        """The image's inspect document, or None when the engine does not have it."""
        try:
            data = await self._client.images.inspect(image)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise self._translate(exc, f"inspect image {image}") from exc
        except Exception as exc:
            raise self._translate(exc, f"inspect image {image}") from exc
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
        return await self._images_where("reference", reference)

    async def images_labeled(self, label: str) -> list[dict[str, Any]]:
        """Every image carrying ``label`` (``key`` or ``key=value``)."""
        return await self._images_where("label", label)

    async def _images_where(self, key: str, value: str) -> list[dict[str, Any]]:
        try:
            images: list[dict[str, Any]] = await self._client.images.list(filters={key: [value]})
        except Exception as exc:
            raise self._translate(exc, "list images") from exc
        return images

    async def build_image(
        self,
        context: Path,
        tag: str,
        labels: Mapping[str, str],
        *,
        pull: bool = False,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        """Build ``tag`` from a build context (an uncompressed tar file with a Dockerfile).

        ``on_step`` gets each ``Step n/m`` line as the engine reports it; a
        failed build raises :class:`ImageBuildError` with the output's tail.
        """
        output: list[str] = []
        with context.open("rb") as fileobj:
            try:
                stream = self._client.images.build(
                    fileobj=fileobj,
                    encoding="identity",
                    tag=tag,
                    labels=dict(labels),
                    pull=pull,
                    rm=True,
                    forcerm=True,
                    stream=True,
                )
                async for chunk in stream:
                    if "error" in chunk:
                        error = str(chunk["error"]).strip()
                        raise ImageBuildError(
                            f"building {tag} failed: {error}\n" + "".join(output[-20:])
                        )
                    text = chunk.get("stream")
                    if text:
                        output.append(text)
                        if on_step is not None and text.startswith("Step "):
                            on_step(text.strip())
            except aiodocker.DockerError as exc:
                raise ImageBuildError(
                    f"building {tag} failed: {exc.message}\n" + "".join(output[-20:])
                ) from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise self._translate(exc, f"build image {tag}") from exc

    async def remove_image(self, image: str) -> None:
        try:
            await self._client.images.delete(image, force=True)
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self._translate(exc, f"remove image {image}") from exc

    # -- instances: containers on this host ------------------------------------

    async def create_instance(self, request: InstanceRequest) -> str:
        return await self.create_container(request.container, name=request.name)

    async def start_instance(self, instance_id: str, request: InstanceRequest) -> InstanceHandle:
        await self.start_container(instance_id)
        data = await self.inspect_container(instance_id)
        if data is None:
            raise EngineError(f"{request.name}: its container vanished right after start")
        port = loopback_port(data, request.port)
        if port is None:
            raise EngineError(f"{request.name}: the engine published no host port for it")
        return InstanceHandle(id=instance_id, container_id=instance_id, host="127.0.0.1", port=port)

    async def instance_status(self, instance_id: str) -> InstanceStatus | None:
        data = await self.inspect_container(instance_id)
        if data is None:
            return None
        state = data.get("State") or {}
        return InstanceStatus(
            running=bool(state.get("Running", False)),
            exit_code=int(state.get("ExitCode", -1)),
            oom_killed=bool(state.get("OOMKilled", False)),
            error=str(state.get("Error") or ""),
        )

    async def wait_instance(self, instance_id: str) -> int:
        return await self.wait_container(instance_id)

    async def instance_logs(self, instance_id: str, tail: int = 30) -> str:
        return await self.container_logs(instance_id, tail)

    async def stop_instance(self, instance_id: str, grace_s: float) -> None:
        await self.stop_container(instance_id, grace_s)

    async def kill_instance(self, instance_id: str) -> None:
        await self.kill_container(instance_id)

    async def remove_instance(self, instance_id: str) -> None:
        await self.remove_container(instance_id)

    # -- containers ----------------------------------------------------------

    async def create_container(self, config: Mapping[str, Any], name: str) -> str:
        """Create a container; return its id. A missing image becomes ImageMissing."""
        try:
            container = await self._client.containers.create(config=dict(config), name=name)
        except aiodocker.DockerError as exc:
            if exc.status == 404 and "image" in str(exc.message).lower():
                raise ImageMissing(str(config.get("Image"))) from exc
            raise self._translate(exc, f"create container {name}") from exc
        except Exception as exc:
            raise self._translate(exc, f"create container {name}") from exc
        return str(container.id)

    async def start_container(self, container_id: str) -> None:
        try:
            await self._client.containers.container(container_id).start()
        except Exception as exc:
            raise self._translate(exc, f"start container {container_id[:12]}") from exc

    async def inspect_container(self, container_id: str) -> dict[str, Any] | None:
        """The container's inspect document, or None when it no longer exists."""
        try:
            data = await self._client.containers.container(container_id).show()
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise self._translate(exc, f"inspect container {container_id[:12]}") from exc
        except Exception as exc:
            raise self._translate(exc, f"inspect container {container_id[:12]}") from exc
        return dict(data)

    async def container_logs(self, container_id: str, tail: int = 30) -> str:
        """The last ``tail`` lines of a container's output ("" when it is gone)."""
        try:
            lines = await self._client.containers.container(container_id).log(
                stdout=True, stderr=True, tail=tail
            )
        except aiodocker.DockerError:
            return ""
        return "".join(lines)

    async def wait_container(self, container_id: str) -> int:
        """Wait until the container exits; return its exit status."""
        try:
            result = await self._client.containers.container(container_id).wait(
                timeout=aiohttp.ClientTimeout(total=None)
            )
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return -1
            raise self._translate(exc, f"wait for container {container_id[:12]}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            # The engine went away during the (long) wait.
            raise self._translate(exc, f"wait for container {container_id[:12]}") from exc
        return int(result.get("StatusCode", -1))

    async def stop_container(self, container_id: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (the engine's own ladder)."""
        try:
            await self._client.containers.container(container_id).stop(t=max(0, int(grace_s)))
        except aiodocker.DockerError as exc:
            if exc.status not in (304, 404):  # already stopped, or gone
                raise self._translate(exc, f"stop container {container_id[:12]}") from exc

    async def kill_container(self, container_id: str) -> None:
        try:
            await self._client.containers.container(container_id).kill()
        except aiodocker.DockerError as exc:
            if exc.status not in (404, 409):  # gone, or not running
                raise self._translate(exc, f"kill container {container_id[:12]}") from exc

    async def remove_container(self, container_id: str) -> None:
        """Force-remove a container and its anonymous volumes; gone already is fine."""
        try:
            await self._client.containers.container(container_id).delete(force=True, v=True)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return
            if exc.status == 409 and "in progress" in str(exc.message):
                return  # another remover got there first
            raise self._translate(exc, f"remove container {container_id[:12]}") from exc

    async def memory_usage(self, container_id: str) -> int | None:
        """The container's memory usage from the stats API, or None when it is gone.

        ``one-shot`` (API 1.41+) answers at once instead of waiting for the
        daemon's next two samples; aiodocker has no parameter for it.
        """
        try:
            stats = await self._client._query_json(
                f"containers/{container_id}/stats",
                params={"stream": "false", "one-shot": "true"},
            )
        except aiodocker.DockerError as exc:
            if exc.status in (404, 409):
                return None
            raise self._translate(exc, f"stats of container {container_id[:12]}") from exc
        usage = (stats.get("memory_stats") or {}).get("usage")
        return int(usage) if usage is not None else None

    # -- networks and volumes ------------------------------------------------

    async def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        try:
            network = await self._client.networks.create(
                {"Name": name, "Driver": "bridge", "Labels": dict(labels), "CheckDuplicate": True}
            )
        except Exception as exc:
            raise self._translate(exc, f"create network {name}") from exc
        return str(network.id)

    async def remove_network(self, network_id: str) -> None:
        try:
            await aiodocker.networks.DockerNetwork(self._client, network_id).delete()  # type: ignore[no-untyped-call]
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self._translate(exc, f"remove network {network_id[:12]}") from exc

    async def remove_volume(self, name: str) -> None:
        try:
            volume = aiodocker.volumes.DockerVolume(self._client, name)  # type: ignore[no-untyped-call]
            await volume.delete(force=True)  # type: ignore[no-untyped-call]
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self._translate(exc, f"remove volume {name}") from exc

    # -- objects found by label ----------------------------------------------

    async def containers_labeled(self, label: str) -> list[dict[str, Any]]:
        """Every container (running or not) carrying ``label`` (``key`` or ``key=value``)."""
        try:
            found = await self._client.containers.list(
                all="1", filters=json.dumps({"label": [label]})
            )
        except Exception as exc:
            raise self._translate(exc, "list containers") from exc
        return [dict(c._container) for c in found]

    async def networks_labeled(self, label: str) -> list[dict[str, Any]]:
        try:
            found = await self._client.networks.list(filters={"label": [label]})
        except Exception as exc:
            raise self._translate(exc, "list networks") from exc
        return list(found)

    async def volumes_labeled(self, label: str) -> list[dict[str, Any]]:
        try:
            found = await self._client.volumes.list(filters={"label": [label]})  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise self._translate(exc, "list volumes") from exc
        return list(found.get("Volumes") or [])

    async def services_labeled(self, label: str) -> list[dict[str, Any]]:
        """Swarm services carrying ``label``; [] when the engine is no swarm manager."""
        return await self._swarm_list("services", label)

    async def secrets_labeled(self, label: str) -> list[dict[str, Any]]:
        """Swarm secrets carrying ``label``; [] when the engine is no swarm manager."""
        return await self._swarm_list("secrets", label)

    async def _swarm_list(self, kind: str, label: str) -> list[dict[str, Any]]:
        try:
            found = await self._client._query_json(
                kind, params={"filters": json.dumps({"label": [label]})}
            )
        except aiodocker.DockerError as exc:
            if exc.status == 503:  # "This node is not a swarm manager"
                return []
            raise self._translate(exc, f"list {kind}") from exc
        except Exception as exc:
            raise self._translate(exc, f"list {kind}") from exc
        return [dict(item) for item in found or []]

    async def remove_service(self, service_id: str) -> None:
        await self._swarm_remove("services", service_id)

    async def remove_secret(self, secret_id: str) -> None:
        await self._swarm_remove("secrets", secret_id)

    async def _swarm_remove(self, kind: str, object_id: str) -> None:
        try:
            async with self._client._query(f"{kind}/{object_id}", method="DELETE"):
                pass
        except aiodocker.DockerError as exc:
            if exc.status not in (404, 503):
                raise self._translate(exc, f"remove {kind[:-1]} {object_id[:12]}") from exc

    async def create_volume(self, name: str, labels: Mapping[str, str]) -> str:
        """Create a named local volume; return its name."""
        try:
            volume = await self._client.volumes.create(  # type: ignore[no-untyped-call]
                {"Name": name, "Driver": "local", "Labels": dict(labels)}
            )
        except Exception as exc:
            raise self._translate(exc, f"create volume {name}") from exc
        return str(volume.name)

    async def image_id(self, image: str) -> str | None:
        """The image's content id (``sha256:...``), or None when the engine does not have it."""
        data = await self.inspect_image(image)
        return str(data.get("Id", "")) or None if data is not None else None

    async def pull_image(self, image: str) -> None:
        """Pull ``image`` from its registry; the engine's refusal becomes an EngineError."""
        try:
            await self._client.images.pull(image)
        except Exception as exc:
            raise self._translate(exc, f"pull image {image}") from exc

    async def follow_logs(self, container_id: str) -> AsyncIterator[str]:
        """The container's output as it comes, line by line, until it exits."""
        pending = ""
        try:
            stream = self._client.containers.container(container_id).log(
                stdout=True, stderr=True, follow=True
            )
            async for chunk in stream:
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    yield line
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise self._translate(exc, f"follow logs of {container_id[:12]}") from exc
        except aiohttp.ClientError as exc:
            raise self._translate(exc, f"follow logs of {container_id[:12]}") from exc
        if pending:
            yield pending


def connect_client(endpoint: str) -> aiodocker.Docker:
    """An aiodocker client for ``endpoint`` (no request made yet)."""
    try:
        return aiodocker.Docker(
            url=endpoint,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            api_version="auto",
        )
    except ValueError as exc:
        raise EngineUnreachable(endpoint, str(exc)) from exc


@asynccontextmanager
async def open_engine(endpoint: str | None = None) -> AsyncIterator[DockerEngine]:
    """Connect to the engine and check that it answers; close the client on exit.

    Raises :class:`EngineUnreachable` naming the endpoint when nothing answers.
    """
    endpoint = endpoint or engine_endpoint()
    client = connect_client(endpoint)
    engine = DockerEngine(client, endpoint)
    try:
        await engine.ping()
        yield engine
    finally:
        await client.close()
