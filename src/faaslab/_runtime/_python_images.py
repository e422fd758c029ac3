"""The Python runtime's images, built locally without a container registry.

- ``faaslab/python-base:3.11`` — a Debian bookworm root filesystem made by
  ``mmdebstrap`` and added to an empty image (``FROM scratch`` + ``ADD`` of
  the tarball: the same result as ``docker import``, through the build API).
- ``faaslab/python:3.11`` — the function runtime: that base (or a pullable
  image given with ``--base``) plus faaslab's in-container server and storage
  helper (``runtimes/python/``) and the ``minio`` client, installed by the
  host's pip for the image's platform so no container ever needs the network.
  It runs as the unprivileged ``FUNCTION_USER`` (every file it needs is
  world-readable: the build context's modes are 0644/0755).
"""

from __future__ import annotations

import shutil
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
from .._errors import EngineError, ImageBuildError, SystemSetupError

__all__ = (
    "BASE_IMAGE",
    "MINIO_REQUIREMENT",
    "RUNTIME_IMAGE",
    "build_python_images",
    "python_image_statuses",
)

BASE_IMAGE = "faaslab/python-base:3.11"
RUNTIME_IMAGE = "faaslab/python:3.11"

DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3-minimal", "libpython3.11-stdlib", "python3-pip", "ca-certificates")
MINIO_REQUIREMENT = "minio==7.2.20"
RUNTIME_FILES = ("server.py", "storage.py")


# -- inputs -------------------------------------------------------------------


def _base_inputs() -> str:
    return input_digest(["base", DEBIAN_SUITE, "essential", *DEBIAN_PACKAGES])


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
            MINIO_REQUIREMENT,
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


def _make_rootfs(target: Path, progress: BuildProgress) -> None:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise SystemSetupError(
            "mmdebstrap is not installed; it builds the runtime image's Debian root "
            "filesystem: run `sudo apt-get install mmdebstrap` (or `make setup`), or use a "
            "pullable image with `python -m faaslab images build --base python:3.11-slim`"
        )
    run_with_progress(
        [
            mmdebstrap,
            "--variant=essential",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            "--format=tar",
            DEBIAN_SUITE,
            str(target),
        ],
        "mmdebstrap",
        progress,
    )


def _install_minio(target: Path, architecture: str, progress: BuildProgress) -> None:
    """Install the minio client for the image's Python with the host's pip.

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
            MINIO_REQUIREMENT,
        ],
        "pip (minio for the image)",
        progress,
    )


async def _build_base(engine: Backend, inputs: str, progress: BuildProgress, work: Path) -> None:
    rootfs = work / "rootfs.tar"
    await anyio.to_thread.run_sync(_make_rootfs, rootfs, progress)
    context = await anyio.to_thread.run_sync(
        lambda: build_context(
            work / "base-context.tar",
            'FROM scratch\nADD rootfs.tar /\nCMD ["python3"]\n',
            trees={"rootfs.tar": rootfs},
        )
    )
    rootfs.unlink()
    progress(f"  {BASE_IMAGE}: importing root filesystem ({context.stat().st_size >> 20} MiB)")
    await engine.build_image(
        context,
        BASE_IMAGE,
        build_labels(BASE_IMAGE, inputs),
        on_step=lambda s: progress(f"  {BASE_IMAGE}: {s}"),
    )


async def _build_runtime(
    engine: Backend, base: str, inputs: str, progress: BuildProgress, work: Path
) -> None:
    info = await engine.info()
    lib = work / "lib"
    await anyio.to_thread.run_sync(_install_minio, lib, info.architecture, progress)
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
            await _build_base(engine, status.inputs, progress, work)
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
