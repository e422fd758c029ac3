"""Every image faaslab needs, built or checked in one place (``images``, ``doctor``).

The recipes live with what they serve: the Python and Node.js runtimes' in
``_runtime``, the storage servers' (object storage and NoSQL) in ``_storage``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .._backend import INPUTS_LABEL, Backend, BuildProgress, ImageStatus
from .._runtime import (
    build_nodejs_images,
    build_python_images,
    nodejs_image_statuses,
    python_image_statuses,
)
from .._storage import (
    build_nosql_image,
    build_storage_image,
    nosql_image_status,
    storage_image_status,
)

__all__ = ("build_images", "describe", "image_statuses")


def _quiet(_: str) -> None:
    pass


async def image_statuses(engine: Backend, *, base: str | None = None) -> list[ImageStatus]:
    """Where each image faaslab needs stands, without building anything."""
    return [
        *await python_image_statuses(engine, base=base),
        *await nodejs_image_statuses(engine),
        await storage_image_status(engine),
        await nosql_image_status(engine),
    ]


async def build_images(
    engine: Backend,
    *,
    base: str | None = None,
    force: bool = False,
    progress: BuildProgress = _quiet,
) -> list[tuple[ImageStatus, bool]]:
    """Build every image that is missing or stale; return (status, rebuilt) for each.

    ``base`` names a pullable Python image (e.g. ``python:3.11-slim``) to use
    instead of the mmdebstrap root filesystem (the Node.js images are always
    Debian's nodejs).
    """
    with tempfile.TemporaryDirectory(prefix="faaslab-build-") as tmp:
        work = Path(tmp)
        results = await build_python_images(engine, work, progress, base=base, force=force)
        results += await build_nodejs_images(engine, work, progress, force=force)
        results.append(await build_storage_image(engine, work, progress, force=force))
        results.append(await build_nosql_image(engine, work, progress, force=force))
    return results


def describe(images: list[dict[str, Any]]) -> list[str]:
    """One line per image for `images list`."""
    lines = []
    for image in images:
        labels = image.get("Labels") or {}
        for tag in image.get("RepoTags") or ["<untagged>"]:
            size = int(image.get("Size", 0)) >> 20
            lines.append(
                f"{tag:<32} {str(image.get('Id', ''))[7:19]}  {size:>5} MiB  "
                f"inputs {labels.get(INPUTS_LABEL, '-')}"
            )
    return lines
