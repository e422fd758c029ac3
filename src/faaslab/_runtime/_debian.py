"""Debian root filesystems for the runtime images, made by ``mmdebstrap``, no registry.

``mmdebstrap --variant=essential`` installs only Debian's Essential set plus
the packages asked for, from Debian's own mirrors (through the host's apt
proxy and CA settings, as every apt download on the host). Two things keep
the result as small as ``*-slim`` images are:

- the ``merged-usr`` hook sets up the merged ``/usr`` itself, so the
  ``usrmerge`` package, and with it a full Perl (about 55 MB), is not needed;
- the same ``dpkg`` path excludes as Debian's slim images: no manual pages,
  info pages or translations, no documentation beyond the copyright files.

The security and updates suites are included, so a rebuild picks up fixes
(OpenSSL, Node.js) that the release itself does not have.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import anyio

from .._backend import Backend, BuildProgress, build_context, build_labels, run_with_progress
from .._errors import SystemSetupError

__all__ = ("DEBIAN_SUITE", "build_rootfs_image", "rootfs_inputs")

DEBIAN_SUITE = "bookworm"
_MIRROR = "http://deb.debian.org/debian"
_SOURCES = (
    f"deb {_MIRROR} {DEBIAN_SUITE} main",
    f"deb {_MIRROR} {DEBIAN_SUITE}-updates main",
    f"deb {_MIRROR}-security {DEBIAN_SUITE}-security main",
)
#: What Debian's slim images leave out (their dpkg path excludes).
_SLIM = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
_MERGED_USR_HOOK = Path("/usr/share/mmdebstrap/hooks/merged-usr")


def rootfs_inputs(packages: Sequence[str]) -> list[str]:
    """What decides a root filesystem, for the image's input hash."""
    return ["rootfs-2", DEBIAN_SUITE, "essential", *_SOURCES, *_SLIM, *packages]


def _mmdebstrap_command(mmdebstrap: str, packages: Sequence[str], target: Path) -> list[str]:
    command = [mmdebstrap, "--variant=essential"]
    if _MERGED_USR_HOOK.is_dir():
        command.append(f"--hook-dir={_MERGED_USR_HOOK}")
    command += [f"--dpkgopt={option}" for option in _SLIM]
    command += [f"--include={','.join(packages)}", "--format=tar", DEBIAN_SUITE, str(target)]
    return [*command, *_SOURCES]


def _make_rootfs(target: Path, packages: Sequence[str], progress: BuildProgress) -> None:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise SystemSetupError(
            "mmdebstrap is not installed; it builds the runtime images' Debian root "
            "filesystems (faaslab/python-base, faaslab/nodejs-base): run `sudo apt-get install "
            "mmdebstrap` (or `make setup`)"
        )
    run_with_progress(_mmdebstrap_command(mmdebstrap, packages, target), "mmdebstrap", progress)


async def build_rootfs_image(
    engine: Backend,
    tag: str,
    packages: Sequence[str],
    inputs: str,
    progress: BuildProgress,
    work: Path,
    *,
    cmd: str,
) -> None:
    """Build ``tag``: a Debian root filesystem with ``packages``, added to an empty image.

    (``FROM scratch`` + ``ADD`` of the tarball: the same result as ``docker
    import``, through the build API.)
    """
    name = tag.replace("/", "-").replace(":", "-")
    rootfs = work / f"{name}-rootfs.tar"
    await anyio.to_thread.run_sync(
        _make_rootfs, rootfs, packages, lambda line: progress(f"  {tag}:{line}")
    )
    context = await anyio.to_thread.run_sync(
        lambda: build_context(
            work / f"{name}-context.tar",
            f'FROM scratch\nADD rootfs.tar /\nCMD ["{cmd}"]\n',
            trees={"rootfs.tar": rootfs},
        )
    )
    rootfs.unlink()
    progress(f"  {tag}: importing root filesystem ({context.stat().st_size >> 20} MiB)")
    await engine.build_image(
        context, tag, build_labels(tag, inputs), on_step=lambda s: progress(f"  {tag}: {s}")
    )
    context.unlink()
