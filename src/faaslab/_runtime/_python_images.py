"""The Python runtime's images, built locally without a container registry.

- ``faaslab/python-base:3.11`` — a Debian bookworm root filesystem made by
  ``mmdebstrap`` (``_debian``) carrying what ``python:3.11-slim`` carries
  (see :data:`DEBIAN_PACKAGES`), added to an empty image.
- ``faaslab/python:3.11`` — the function runtime: that base (or a pullable
  image given with ``--base``) plus faaslab's in-container server and SeBS's
  storage and nosql helpers (``runtimes/python/``) and what SeBS's image adds
  with pip (``minio``, ``cffi``), installed by the host's pip for the image's
  platform so no container ever needs the network.
  It runs as the unprivileged ``FUNCTION_USER`` (every file it needs is
  world-readable: the build context's modes are 0644/0755).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import anyio

from .._backend import (
    FUNCTION_USER,
    Backend,
    BuildProgress,
    ImageStatus,
    build_context,
    build_labels,
    image_status,
    input_digest,
    run_with_progress,
)
from .._errors import EngineError, ImageBuildError
from ._debian import DEBIAN_SUITE, build_rootfs_image, rootfs_inputs

__all__ = (
    "BASE_IMAGE",
    "DEBIAN_PACKAGES",
    "MINIO_REQUIREMENT",
    "RUNTIME_IMAGE",
    "RUNTIME_REQUIREMENTS",
    "build_python_images",
    "python_image_statuses",
)

BASE_IMAGE = "faaslab/python-base:3.11"
RUNTIME_IMAGE = "faaslab/python:3.11"

#: What ``python:3.11-slim`` (docker-library/python, ``3.11/slim-bookworm``)
#: carries, as Debian packages: it is ``debian:bookworm-slim`` (whose ``apt``
#: brings ``libstdc++6`` and ``libgcc-s1``: what manylinux wheels with C++
#: inside, igraph's for one, link against) plus ``ca-certificates``,
#: ``netbase`` and ``tzdata``, plus the libraries its compiled Python links
#: (kept by the Dockerfile's ``ldd`` scan: OpenSSL, libffi, expat, zlib, bzip2,
#: xz, SQLite, readline, ncurses, uuid, gdbm, Berkeley DB, nsl/tirpc). Here
#: Debian's own Python 3.11 and pip stand in for the compiled one.
DEBIAN_PACKAGES = (
    "python3-minimal",
    "libpython3.11-stdlib",
    "python3-pip",
    "ca-certificates",
    "netbase",
    "tzdata",
    "libstdc++6",
    "libgcc-s1",
    "libssl3",
    "libffi8",
    "libexpat1",
    "zlib1g",
    "libbz2-1.0",
    "liblzma5",
    "libsqlite3-0",
    "libreadline8",
    "libncursesw6",
    "libuuid1",
    "libgdbm6",
    "libdb5.3",
    "libnsl2",
    "libtirpc3",
)
MINIO_REQUIREMENT = "minio==7.2.20"
#: What SeBS's local image adds with ``pip install cffi minio bottle`` (bottle
#: runs SeBS's own server, which faaslab's replaces).
RUNTIME_REQUIREMENTS = (MINIO_REQUIREMENT, "cffi==2.1.1")
RUNTIME_FILES = ("server.py", "storage.py", "nosql.py")


# -- inputs -------------------------------------------------------------------


def _base_inputs() -> str:
    return input_digest(["base", *rootfs_inputs(DEBIAN_PACKAGES)])


def _runtime_sources() -> dict[str, bytes]:
    package = resources.files("faaslab") / "runtimes" / "python"
    return {name: (package / name).read_bytes() for name in RUNTIME_FILES}


def _runtime_dockerfile(base: str) -> str:
    return f"""\
FROM {base}
COPY lib /opt/faaslab/lib
COPY {" ".join(RUNTIME_FILES)} /opt/faaslab/
ENV PYTHONPATH=/opt/faaslab/lib PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /function
EXPOSE 8080
USER {FUNCTION_USER}
ENTRYPOINT ["python3", "/opt/faaslab/server.py"]
"""


def _runtime_inputs(base: str, base_id: str) -> str:
    sources = _runtime_sources()
    return input_digest(
        [
            "runtime",
            base,
            base_id,
            *RUNTIME_REQUIREMENTS,
            _runtime_dockerfile(base),
            *(f"{name}\0" for name in sorted(sources)),
            *(sources[name] for name in sorted(sources)),
        ]
    )


async def _runtime_status(engine: Backend, base: str) -> ImageStatus:
    base_id = await engine.image_id(base) or ""
    return await image_status(engine, RUNTIME_IMAGE, _runtime_inputs(base, base_id))


async def python_image_statuses(engine: Backend, *, base: str | None = None) -> list[ImageStatus]:
    """Where each Python image stands, without building anything."""
    statuses = []
    if base is None:
        statuses.append(await image_status(engine, BASE_IMAGE, _base_inputs()))
    statuses.append(await _runtime_status(engine, base or BASE_IMAGE))
    return statuses


# -- building -----------------------------------------------------------------


def _install_packages(target: Path, architecture: str, progress: BuildProgress) -> None:
    """Install SeBS's additions (minio, cffi) for the image's Python with the host's pip.

    The host's pip knows this machine's index, proxy and CA bundle; running it
    with an explicit platform installs wheels for the image, so no container
    needs network access or certificates.
    """
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
    arch = machine.get(architecture, architecture)
    run_with_progress(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(target),
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--platform",
            f"manylinux2014_{arch}",
            "--platform",
            f"manylinux_2_17_{arch}",
            "--only-binary=:all:",
            *RUNTIME_REQUIREMENTS,
        ],
        "pip (minio and cffi for the image)",
        progress,
    )


async def _build_runtime(
    engine: Backend, base: str, inputs: str, progress: BuildProgress, work: Path
) -> None:
    info = await engine.info()
    lib = work / "lib"
    await anyio.to_thread.run_sync(_install_packages, lib, info.architecture, progress)
    context = await anyio.to_thread.run_sync(
        lambda: build_context(
            work / "runtime-context.tar",
            _runtime_dockerfile(base),
            files=_runtime_sources(),
            trees={"lib": lib},
        )
    )
    await engine.build_image(
        context,
        RUNTIME_IMAGE,
        build_labels(RUNTIME_IMAGE, inputs),
        on_step=lambda s: progress(f"  {RUNTIME_IMAGE}: {s}"),
    )


async def _ensure_pulled(engine: Backend, image: str, progress: BuildProgress) -> None:
    if await engine.image_labels(image) is not None:
        return
    progress(f"pulling {image}")
    try:
        await engine.pull_image(image)
    except EngineError as exc:
        raise ImageBuildError(
            f"cannot pull base image {image}: {exc}; without a registry, build "
            "without --base (mmdebstrap)"
        ) from exc


async def build_python_images(
    engine: Backend,
    work: Path,
    progress: BuildProgress,
    *,
    base: str | None = None,
    force: bool = False,
) -> list[tuple[ImageStatus, bool]]:
    """Build the base (unless ``base`` names a pullable image) and the runtime when stale."""
    results: list[tuple[ImageStatus, bool]] = []
    if base is None:
        status = await image_status(engine, BASE_IMAGE, _base_inputs())
        rebuild = force or not status.current
        if rebuild:
            progress(f"building {BASE_IMAGE} (Debian {DEBIAN_SUITE} via mmdebstrap)")
            await build_rootfs_image(
                engine, BASE_IMAGE, DEBIAN_PACKAGES, status.inputs, progress, work, cmd="python3"
            )
        results.append((status, rebuild))
    else:
        await _ensure_pulled(engine, base, progress)
    runtime_base = base or BASE_IMAGE
    status = await _runtime_status(engine, runtime_base)
    rebuild = force or not status.current
    if rebuild:
        progress(f"building {RUNTIME_IMAGE} from {runtime_base}")
        await _build_runtime(engine, runtime_base, status.inputs, progress, work)
    results.append((status, rebuild))
    return results
