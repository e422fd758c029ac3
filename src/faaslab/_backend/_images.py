"""Image builds without a registry: input hashes, build contexts, long host commands.

Every image faaslab builds carries two labels: ``faaslab.image`` (so `images
list` and clean-ups find them) and ``faaslab.inputs``, a hash of everything
that went into it, so a build is a no-op when nothing changed and a rebuild
when anything did. A Dockerfile ``FROM`` a local image builds offline. The
recipes live with what they serve (the language runtimes in ``_runtime``, the
storage servers in ``_storage``); this module holds what they share.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import msgspec

from .._errors import ImageBuildError
from ._protocol import Backend

__all__ = (
    "IMAGE_LABEL",
    "INPUTS_LABEL",
    "BuildProgress",
    "ImageStatus",
    "build_context",
    "build_labels",
    "image_status",
    "input_digest",
    "run_with_progress",
)

INPUTS_LABEL = "faaslab.inputs"
#: Every image faaslab builds carries this label, so `images list` and clean-ups find them.
IMAGE_LABEL = "faaslab.image"

#: Receives one line of progress at a time.
BuildProgress = Callable[[str], None]


class ImageStatus(msgspec.Struct, frozen=True):
    """One image faaslab needs: whether it is present and built from current inputs."""

    name: str
    present: bool
    current: bool
    inputs: str


def input_digest(parts: Iterable[bytes | str]) -> str:
    """A short hash of an image's inputs, length-prefixed so that parts cannot run together."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def build_labels(tag: str, inputs: str) -> dict[str, str]:
    return {INPUTS_LABEL: inputs, IMAGE_LABEL: tag}


async def image_status(engine: Backend, name: str, inputs: str) -> ImageStatus:
    labels = await engine.image_labels(name)
    present = labels is not None
    current = labels is not None and labels.get(INPUTS_LABEL) == inputs
    return ImageStatus(name, present, current, inputs)


def build_context(
    target: Path,
    dockerfile: str,
    *,
    files: Mapping[str, bytes] | None = None,
    executables: Mapping[str, Path] | None = None,
    trees: Mapping[str, Path] | None = None,
    empty_dirs: Mapping[str, int] | None = None,
) -> Path:
    """Write a build context tar: the Dockerfile, in-memory files, host files and trees.

    ``executables`` are host files added with mode 0755, ``trees`` host
    directories (or files) added as they are, ``empty_dirs`` directories
    created with the given mode (``/tmp`` needs 01777).
    """
    with tarfile.open(target, "w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        for name, data in (files or {}).items():
            _add_bytes(tar, name, data)
        for name, mode in (empty_dirs or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)
        for name, path in (executables or {}).items():
            info = tar.gettarinfo(str(path), arcname=name)
            info.mode = 0o755
            with path.open("rb") as binary:
                tar.addfile(info, binary)
        for name, path in (trees or {}).items():
            tar.add(path, arcname=name)
    return target


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def run_with_progress(command: list[str], what: str, progress: BuildProgress) -> None:
    """Run a long host command (mmdebstrap, pip), passing its output through as progress."""
    progress(f"  {what}: {' '.join(command)}")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert process.stdout is not None
    tail: list[str] = []
    with process.stdout:
        for line in process.stdout:
            tail = [*tail[-30:], line]
            progress(f"    {line.rstrip()}")
    if process.wait() != 0:
        raise ImageBuildError(f"{what} failed (exit {process.returncode}):\n{''.join(tail)}")
