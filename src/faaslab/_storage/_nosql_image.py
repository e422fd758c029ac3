"""The NoSQL server's image: dynalite on Debian's Node.js, built without a registry.

``faaslab/dynalite:<version>`` is a Debian root filesystem made by
``mmdebstrap`` with Debian's ``nodejs`` (trixie: dynalite 4 needs Node.js 20,
bookworm ships 18), plus the ``dynalite`` package and its dependencies
installed by the host's ``npm`` (which knows this machine's registry, proxy
and CA bundle). dynalite's one native dependency, ``classic-level``, ships
prebuilt N-API binaries for linux-x64 and linux-arm64 in its npm package, so
nothing is compiled and no install script runs (``--ignore-scripts``).
"""

from __future__ import annotations

import shutil
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
    run_with_progress,
)
from .._errors import SystemSetupError

__all__ = (
    "DYNALITE_VERSION",
    "build_nosql_image",
    "nosql_image",
    "nosql_image_status",
)

DYNALITE_VERSION = "4.0.0"
DEBIAN_SUITE = "trixie"
DEBIAN_PACKAGES = ("nodejs",)
#: What the server never reads: documentation, manuals, translations.
_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
#: Where the package lands in the image; the entry point runs its CLI.
INSTALL_DIR = "/opt/dynalite"

_DOCKERFILE = f"""\
FROM scratch
ADD rootfs.tar /
COPY dynalite {INSTALL_DIR}
COPY data /data
ENV NODE_ENV=production
ENTRYPOINT ["/usr/bin/node", "{INSTALL_DIR}/node_modules/dynalite/cli.js"]
"""


def nosql_image() -> str:
    return f"faaslab/dynalite:{DYNALITE_VERSION}"


def _inputs() -> str:
    return input_digest(
        ["dynalite", DYNALITE_VERSION, DEBIAN_SUITE, *DEBIAN_PACKAGES, *_EXCLUDES, _DOCKERFILE]
    )


async def nosql_image_status(engine: Backend) -> ImageStatus:
    return await image_status(engine, nosql_image(), _inputs())


def _tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemSetupError(
            f"{name} is not installed; {why}: run `sudo apt-get install {name}` (or `make setup`)"
        )
    return path


def _make_rootfs(target: Path, progress: BuildProgress) -> None:
    mmdebstrap = _tool("mmdebstrap", "it builds the NoSQL image's Debian root filesystem")
    run_with_progress(
        [
            mmdebstrap,
            "--variant=essential",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            *(f"--dpkgopt=path-exclude={pattern}" for pattern in _EXCLUDES),
            "--format=tar",
            DEBIAN_SUITE,
            str(target),
        ],
        "mmdebstrap (nodejs)",
        progress,
    )


def _install_dynalite(target: Path, progress: BuildProgress) -> None:
    npm = _tool("npm", "it fetches dynalite from the npm registry for the NoSQL image")
    target.mkdir(parents=True, exist_ok=True)
    run_with_progress(
        [
            npm,
            "install",
            "--prefix",
            str(target),
            "--omit=dev",
            "--ignore-scripts",
            "--no-package-lock",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"dynalite@{DYNALITE_VERSION}",
        ],
        "npm (dynalite for the image)",
        progress,
    )
    if not (target / "node_modules" / "dynalite" / "cli.js").is_file():
        raise SystemSetupError(f"npm installed no dynalite CLI under {target}")


async def build_nosql_image(
    engine: Backend, work: Path, progress: BuildProgress, *, force: bool = False
) -> tuple[ImageStatus, bool]:
    """Build the dynalite image when missing or stale; return (status, rebuilt)."""
    status = await nosql_image_status(engine)
    if status.current and not force:
        return status, False
    tag = nosql_image()
    progress(f"building {tag} (Debian {DEBIAN_SUITE} nodejs via mmdebstrap, dynalite via npm)")
    rootfs = work / "nosql-rootfs.tar"
    modules = work / "dynalite"
    await anyio.to_thread.run_sync(_make_rootfs, rootfs, progress)
    await anyio.to_thread.run_sync(_install_dynalite, modules, progress)
    context = await anyio.to_thread.run_sync(
        lambda: build_context(
            work / "nosql-context.tar",
            _DOCKERFILE,
            trees={"rootfs.tar": rootfs, "dynalite": modules},
            empty_dirs={"data": 0o755},
        )
    )
    rootfs.unlink()
    progress(f"  {tag}: importing ({context.stat().st_size >> 20} MiB)")
    await engine.build_image(
        context, tag, build_labels(tag, status.inputs), on_step=lambda s: progress(f"  {tag}: {s}")
    )
    return status, True
