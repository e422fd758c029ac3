"""The node sampler's image: the sampling worker, on the Python runtime image.

A Swarm deployment samples memory on every node with a global service
(``_sampling._node``); its tasks run this image: the Python base image (the
runtime image when there is no base, e.g. built with ``--base``) plus
msgspec (installed by the host's pip for the image's platform, as the
runtime's own packages are) and the few modules of faaslab the worker needs
(``_sampling``'s worker and its timed reads, deadline grids, frames, cgroup
discovery and node server, the error hierarchy, int64 packing: a unit test
checks that they import nothing else of faaslab). Stub ``__init__`` files keep the rest of faaslab
(and its dependencies) out of the image. Built on the engine that needs it,
only when its inputs changed.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

import anyio

from .._backend import (
    Backend,
    BuildProgress,
    build_context,
    build_labels,
    image_status,
    input_digest,
    run_with_progress,
)
from ._python_images import BASE_IMAGE, RUNTIME_IMAGE

__all__ = ("SAMPLER_IMAGE", "ensure_sampler_image")

SAMPLER_IMAGE = "faaslab/sampler:3.11"
MSGSPEC_REQUIREMENT = "msgspec==0.22.0"
#: faaslab's modules in the image, by package path.
_MODULES = (
    "_errors.py",
    "_util/_int64.py",
    "_sampling/_protocol.py",
    "_sampling/_grid.py",
    "_sampling/_loop.py",
    "_sampling/_worker.py",
    "_sampling/_cgroup.py",
    "_sampling/_node.py",
)
_STUBS = {
    "__init__.py": b'"""faaslab\'s node sampler (only the sampling modules)."""\n',
    "_sampling/__init__.py": b"",
    "_util/__init__.py": b"from ._int64 import pack_int64, unpack_int64\n",
}
_DOCKERFILE = """\
FROM {base}
COPY sampler /opt/faaslab-sampler
ENV PYTHONPATH=/opt/faaslab-sampler:/opt/faaslab-sampler/lib PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1
USER 0:0
WORKDIR /
ENTRYPOINT ["python3", "-m", "faaslab._sampling._node"]
"""


def _sources() -> dict[str, bytes]:
    package = resources.files("faaslab")
    files = {f"sampler/faaslab/{name}": (package / name).read_bytes() for name in _MODULES}
    files.update({f"sampler/faaslab/{name}": data for name, data in _STUBS.items()})
    return files


def _inputs(base: str, base_id: str) -> str:
    sources = _sources()
    return input_digest(
        ["sampler", base, base_id, MSGSPEC_REQUIREMENT, _DOCKERFILE.format(base=base)]
        + [part for name in sorted(sources) for part in (name, sources[name])]
    )


def _install_msgspec(target: Path, architecture: str, progress: BuildProgress) -> None:
    """msgspec for the image's Python, by the host's pip (its index, proxy, CA bundle)."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(architecture, architecture)
    run_with_progress(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--target", str(target), "--python-version", "3.11", "--implementation", "cp",
            "--platform", f"manylinux2014_{arch}", "--platform", f"manylinux_2_17_{arch}",
            "--only-binary=:all:", MSGSPEC_REQUIREMENT,
        ],
        "pip (msgspec for the sampler image)",
        progress,
    )  # fmt: skip


async def ensure_sampler_image(engine: Backend, progress: BuildProgress | None = None) -> str:
    """Build the sampler image on ``engine`` unless it is current; return its tag."""
    say = progress or (lambda _: None)
    # The plain Debian Python base when the engine has it: it changes far less
    # often than the runtime image (whose server, user or packages may change).
    base = BASE_IMAGE if await engine.image_id(BASE_IMAGE) else RUNTIME_IMAGE
    await engine.require_image(base)
    base_id = await engine.image_id(base) or ""
    status = await image_status(engine, SAMPLER_IMAGE, _inputs(base, base_id))
    if status.current:
        return SAMPLER_IMAGE
    say(f"building {SAMPLER_IMAGE}")
    info = await engine.info()
    with tempfile.TemporaryDirectory(prefix="faaslab-sampler-image-") as tmp:
        work = Path(tmp)
        lib = work / "lib"
        await anyio.to_thread.run_sync(_install_msgspec, lib, info.architecture, say)
        context = await anyio.to_thread.run_sync(
            lambda: build_context(
                work / "context.tar",
                _DOCKERFILE.format(base=base),
                files=_sources(),
                trees={"sampler/lib": lib},
            )
        )
        await engine.build_image(
            context,
            SAMPLER_IMAGE,
            build_labels(SAMPLER_IMAGE, status.inputs),
            on_step=lambda step: say(f"  {SAMPLER_IMAGE}: {step}"),
        )
    return SAMPLER_IMAGE
