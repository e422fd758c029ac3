"""The Node.js runtime's images, built locally without a container registry.

- ``faaslab/nodejs-base:18`` — a Debian bookworm root filesystem with
  Debian's ``nodejs`` (18, the version Debian 12 ships), ``ca-certificates``,
  ``netbase`` and ``tzdata``, made by ``mmdebstrap`` (``_debian``).
- ``faaslab/nodejs-npm:18`` — the same with Debian's ``npm``: the installer
  image, where npm installs functions' ``package.json`` dependencies (and the
  runtime's own modules) for exactly the runtime's Node and libc.
- ``faaslab/nodejs:18`` — the function runtime: the base plus faaslab's
  in-container server and SeBS's ``storage.js`` / ``nosql.js`` helpers
  (``runtimes/nodejs/``), and the modules SeBS provides to every Node.js
  function (``minio`` 7.0.16, ``aws-sdk`` 2.1692.0, ``uuid``), installed by npm
  at build time into ``/opt/faaslab/node_modules`` (``FAASLAB_NODE_GLOBAL``, and
  ``NODE_PATH`` as in SeBS's image, so any ``node`` a function starts finds them).
  It carries no npm: functions do not need it, and the image stays small.
"""

from __future__ import annotations

import os
import shutil
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
)
from .._util import first_error
from ._debian import DEBIAN_SUITE, build_rootfs_image, rootfs_inputs
from ._npm import npm_install
from ._npmconfig import host_npm_config, npm_settings

__all__ = (
    "NODE_BASE_IMAGE",
    "NODE_MAJOR",
    "NODE_PACKAGES",
    "NODE_RUNTIME_IMAGE",
    "NPM_IMAGE",
    "build_nodejs_images",
    "nodejs_image_statuses",
)

#: Debian 12's nodejs.
NODE_MAJOR = "18"
NODE_BASE_IMAGE = f"faaslab/nodejs-base:{NODE_MAJOR}"
NPM_IMAGE = f"faaslab/nodejs-npm:{NODE_MAJOR}"
NODE_RUNTIME_IMAGE = f"faaslab/nodejs:{NODE_MAJOR}"

#: nodejs brings libnode (V8, ICU, OpenSSL, libuv, libstdc++); the rest as
#: ``python:3.11-slim`` has them (certificates, /etc/services, time zones).
NODE_PACKAGES = ("nodejs", "ca-certificates", "netbase", "tzdata")
NPM_PACKAGES = (*NODE_PACKAGES, "npm")
#: What ``runtimes/nodejs/`` puts into the image; package.json pins the global modules.
RUNTIME_FILES = ("server.js", "storage.js", "nosql.js", "package.json")
GLOBAL_MODULES = "/opt/faaslab/node_modules"


def _runtime_sources() -> dict[str, bytes]:
    package = resources.files("faaslab") / "runtimes" / "nodejs"
    return {name: (package / name).read_bytes() for name in RUNTIME_FILES}


def _runtime_dockerfile() -> str:
    return f"""\
FROM {NODE_BASE_IMAGE}
COPY node_modules {GLOBAL_MODULES}
COPY {" ".join(RUNTIME_FILES)} /opt/faaslab/
ENV FAASLAB_NODE_GLOBAL={GLOBAL_MODULES} NODE_PATH={GLOBAL_MODULES} \
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1
WORKDIR /function
EXPOSE 8080
USER {FUNCTION_USER}
ENTRYPOINT ["node", "/opt/faaslab/server.js"]
"""


def _base_inputs(packages: tuple[str, ...]) -> str:
    return input_digest(["nodejs-base", *rootfs_inputs(packages)])


def _runtime_inputs(base_id: str, npm_id: str) -> str:
    sources = _runtime_sources()
    return input_digest(
        [
            "nodejs-runtime",
            # Bumped when what the build does to the modules changes (_prune).
            "prune-1",
            base_id,
            npm_id,
            _runtime_dockerfile(),
            *(f"{name}\0" for name in sorted(sources)),
            *(sources[name] for name in sorted(sources)),
        ]
    )


async def _runtime_status(engine: Backend) -> ImageStatus:
    base_id = await engine.image_id(NODE_BASE_IMAGE) or ""
    npm_id = await engine.image_id(NPM_IMAGE) or ""
    return await image_status(engine, NODE_RUNTIME_IMAGE, _runtime_inputs(base_id, npm_id))


async def nodejs_image_statuses(engine: Backend) -> list[ImageStatus]:
    """Where each Node.js image stands, without building anything."""
    return [
        await image_status(engine, NODE_BASE_IMAGE, _base_inputs(NODE_PACKAGES)),
        await image_status(engine, NPM_IMAGE, _base_inputs(NPM_PACKAGES)),
        await _runtime_status(engine),
    ]


def _prune(modules: Path) -> int:
    """Remove what Node never loads: TypeScript declarations, aws-sdk's browser bundles.

    (About 70 of aws-sdk's 100 MB: ``clients/*.d.ts`` and ``dist/``, which its
    package.json names for browsers only.) Returns the bytes removed.
    """
    removed = 0
    doomed = [*modules.rglob("*.d.ts"), modules / "aws-sdk" / "dist"]
    for path in doomed:
        if path.is_file():
            removed += path.stat().st_size
            path.unlink()
        elif path.is_dir():
            removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
    return removed


async def _build_runtime(engine: Backend, inputs: str, progress: BuildProgress, work: Path) -> None:
    sources = _runtime_sources()
    project = work / "nodejs-global"
    project.mkdir(mode=0o755)
    (project / "package.json").write_bytes(sources["package.json"])
    settings = npm_settings(await host_npm_config(), os.environ)
    await npm_install(
        engine,
        project,
        NPM_IMAGE,
        settings,
        key=inputs,
        what="the Node.js runtime's modules (minio, aws-sdk, uuid)",
        progress=progress,
    )
    removed = await anyio.to_thread.run_sync(_prune, project / "node_modules")
    progress(f"  {NODE_RUNTIME_IMAGE}: pruned {removed >> 20} MiB Node never loads")
    context = await anyio.to_thread.run_sync(
        lambda: build_context(
            work / "nodejs-runtime-context.tar",
            _runtime_dockerfile(),
            files=sources,
            trees={"node_modules": project / "node_modules"},
        )
    )
    await engine.build_image(
        context,
        NODE_RUNTIME_IMAGE,
        build_labels(NODE_RUNTIME_IMAGE, inputs),
        on_step=lambda s: progress(f"  {NODE_RUNTIME_IMAGE}: {s}"),
    )


async def build_nodejs_images(
    engine: Backend, work: Path, progress: BuildProgress, *, force: bool = False
) -> list[tuple[ImageStatus, bool]]:
    """Build the base, the installer and the runtime image, each only when stale."""
    results: list[tuple[ImageStatus, bool]] = []
    wanted = ((NODE_BASE_IMAGE, NODE_PACKAGES), (NPM_IMAGE, NPM_PACKAGES))
    stale = []
    for tag, packages in wanted:
        status = await image_status(engine, tag, _base_inputs(packages))
        rebuild = force or not status.current
        results.append((status, rebuild))
        if rebuild:
            stale.append((tag, packages, status.inputs))

    async def build_base(tag: str, packages: tuple[str, ...], inputs: str) -> None:
        progress(f"building {tag} (Debian {DEBIAN_SUITE} via mmdebstrap)")
        await build_rootfs_image(engine, tag, packages, inputs, progress, work, cmd="node")

    # The two root filesystems are independent: mmdebstrap makes them side by side.
    try:
        async with anyio.create_task_group() as tg:
            for tag, packages, inputs in stale:
                tg.start_soon(build_base, tag, packages, inputs)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    status = await _runtime_status(engine)
    rebuild = force or not status.current
    if rebuild:
        progress(f"building {NODE_RUNTIME_IMAGE} from {NODE_BASE_IMAGE}")
        await _build_runtime(engine, status.inputs, progress, work)
    results.append((status, rebuild))
    return results
