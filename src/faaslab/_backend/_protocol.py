"""Where containers run: the :class:`Backend` Protocol every engine call goes through.

The actors above it (functions, samplers, storage, the deployment) speak only
this Protocol, never a client library, so a backend can change where
instances run without touching them: the Docker host
(:class:`~._docker.DockerEngine`), Docker Swarm
(:class:`~._swarm.SwarmEngine`), Kubernetes next.

Instances (function instances, the storage server) go through the
instance-level operations (``create_instance`` ... ``remove_instance``, see
``_instance``): the actors never see whether a container, a service or a pod
runs them, nor how its port reaches the host. The container-level
operations below them stay for the engine's own jobs (image builds, pip
installs, probes) and for the backends themselves.

Every method raises faaslab errors only: :class:`~faaslab.EngineUnreachable`
when nothing answers, :class:`~faaslab.EngineError` when the engine refuses,
:class:`~faaslab.ImageMissing` / :class:`~faaslab.ImageBuildError` for images.
"Gone already" is never an error for a removal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import msgspec

from ._instance import InstanceHandle, InstanceRequest, InstanceStatus

__all__ = ("Backend", "EngineInfo")


class EngineInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine says about itself (from ``/version`` and ``/info``)."""

    endpoint: str
    version: str
    api_version: str
    cgroup_driver: str
    cgroup_version: str
    #: The engine's machine architecture (``x86_64``, ``aarch64``): images are built for it.
    architecture: str


class Backend(Protocol):
    """A connected container engine."""

    #: Where it answers (``unix:///var/run/docker.sock``, ``tcp://...``).
    endpoint: str

    # -- the engine ------------------------------------------------------------

    async def ping(self) -> None:
        """Check that the engine answers."""
        ...

    async def info(self) -> EngineInfo: ...

    # -- images ----------------------------------------------------------------

    async def inspect_image(self, image: str) -> dict[str, Any] | None:
        """The image's inspect document, or None when the engine does not have it."""
        ...

    async def image_labels(self, image: str) -> dict[str, str] | None:
        """Labels of ``image``, or None when the engine does not have it."""
        ...

    async def image_id(self, image: str) -> str | None:
        """The image's content id (``sha256:...``), or None when the engine does not have it."""
        ...

    async def require_image(self, image: str) -> None:
        """Raise :class:`~faaslab.ImageMissing` unless the engine has ``image``."""
        ...

    async def list_images(self, reference: str) -> list[dict[str, Any]]:
        """Images matching a reference pattern (``faaslab/pip-*``)."""
        ...

    async def images_labeled(self, label: str) -> list[dict[str, Any]]:
        """Every image carrying ``label`` (``key`` or ``key=value``)."""
        ...

    async def build_image(
        self,
        context: Path,
        tag: str,
        labels: Mapping[str, str],
        *,
        pull: bool = False,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        """Build ``tag`` from a build context (a tar file holding a Dockerfile)."""
        ...

    async def pull_image(self, image: str) -> None:
        """Pull ``image`` from its registry."""
        ...

    async def remove_image(self, image: str) -> None: ...

    # -- instances -------------------------------------------------------------

    async def create_instance(self, request: InstanceRequest) -> str:
        """Create (not yet start) one instance; return the backend's id of it.

        Raises :class:`~faaslab.ImageMissing` when its image is not there.
        """
        ...

    async def start_instance(self, instance_id: str, request: InstanceRequest) -> InstanceHandle:
        """Start it and return once it runs and its port is reachable from the host
        (its server may still be starting). Raises :class:`~faaslab.EngineError`
        when it cannot run, with the engine's reason."""
        ...

    async def instance_status(self, instance_id: str) -> InstanceStatus | None:
        """Whether it runs, how it ended; None when it no longer exists."""
        ...

    async def wait_instance(self, instance_id: str) -> int:
        """Wait until it ends; return its exit status (-1 when gone)."""
        ...

    async def instance_logs(self, instance_id: str, tail: int = 30) -> str:
        """The last ``tail`` lines of its output ("" when it is gone)."""
        ...

    async def stop_instance(self, instance_id: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; what ran stays (removal is separate)."""
        ...

    async def kill_instance(self, instance_id: str) -> None:
        """End it at once (a timed-out call retires it)."""
        ...

    async def remove_instance(self, instance_id: str) -> None:
        """Remove it and whatever the backend made to run or reach it; gone already is fine."""
        ...

    # -- containers ------------------------------------------------------------

    async def create_container(self, config: Mapping[str, Any], name: str) -> str:
        """Create a container from an Engine API config; return its id."""
        ...

    async def start_container(self, container_id: str) -> None: ...

    async def inspect_container(self, container_id: str) -> dict[str, Any] | None:
        """The container's inspect document, or None when it no longer exists."""
        ...

    async def container_logs(self, container_id: str, tail: int = 30) -> str:
        """The last ``tail`` lines of a container's output ("" when it is gone)."""
        ...

    def follow_logs(self, container_id: str) -> AsyncIterator[str]:
        """The container's output as it comes, line by line, until it exits."""
        ...

    async def wait_container(self, container_id: str) -> int:
        """Wait until the container exits; return its exit status (-1 when gone)."""
        ...

    async def stop_container(self, container_id: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``."""
        ...

    async def kill_container(self, container_id: str) -> None: ...

    async def remove_container(self, container_id: str) -> None:
        """Force-remove a container and its anonymous volumes."""
        ...

    async def memory_usage(self, container_id: str) -> int | None:
        """Memory usage from the engine's stats (about 1 s resolution), None when gone."""
        ...

    # -- networks and volumes --------------------------------------------------

    async def create_network(self, name: str, labels: Mapping[str, str]) -> str: ...

    async def remove_network(self, network_id: str) -> None: ...

    async def create_volume(self, name: str, labels: Mapping[str, str]) -> str: ...

    async def remove_volume(self, name: str) -> None: ...

    # -- objects found by label ------------------------------------------------

    async def containers_labeled(self, label: str) -> list[dict[str, Any]]:
        """Every container (running or not) carrying ``label`` (``key`` or ``key=value``)."""
        ...

    async def networks_labeled(self, label: str) -> list[dict[str, Any]]: ...

    async def volumes_labeled(self, label: str) -> list[dict[str, Any]]: ...

    async def services_labeled(self, label: str) -> list[dict[str, Any]]:
        """Swarm services carrying ``label`` ([] on an engine that is no swarm manager)."""
        ...

    async def secrets_labeled(self, label: str) -> list[dict[str, Any]]:
        """Swarm secrets carrying ``label`` ([] on an engine that is no swarm manager)."""
        ...

    async def remove_service(self, service_id: str) -> None: ...

    async def remove_secret(self, secret_id: str) -> None: ...
