"""A Node.js function's ``package.json``, installed by npm for the runtime image's Node.

npm runs inside a container of the installer image (``faaslab/nodejs-npm``:
the runtime's root filesystem plus Debian's npm, so native add-ons and
prebuilt binaries fit the runtime's Node and libc). The result lives in a
cache, ``<cache_root>/<key>/node_modules``, keyed by a hash of the project
files (``package.json``, a lock file, a project ``.npmrc``), the image id and
the npm settings, and is mounted read-only at ``/function/.node_packages`` in
function containers, where the runtime's server puts it on the module path.

What the container's npm gets from the host (npmrc files, CA bundle, proxies)
is decided in ``_npmconfig``. The container is on a bridge network of its
own, runs as the host user without capabilities, and is removed afterwards
with its network whatever happens; a failed install leaves no cache entry.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from .._backend import Backend
from .._errors import ImageMissing, SpecError
from .._util import state_dir
from ._cache import cache_key, cached_entry, fill_entry
from ._nodejs_images import NPM_IMAGE
from ._npm import npm_install
from ._npmconfig import host_npm_config, npm_settings

__all__ = (
    "PROJECT_FILES",
    "default_packages_cache_root",
    "install_packages",
    "needs_install",
    "read_package_json",
)

log = structlog.get_logger()

Progress = Callable[[str], None]

#: What npm reads of a project, copied beside each other into the install directory.
PROJECT_FILES = ("package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc")
#: Written last into a finished cache entry, with what it was built from.
MARKER = ".faaslab-packages.json"
#: The dependency fields npm installs with ``--omit=dev``.
_INSTALLED_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")


def default_packages_cache_root() -> Path:
    return state_dir() / "node_packages"


def read_package_json(path: Path) -> dict[str, Any]:
    """The manifest as a JSON object; a SpecError naming the file when it is not one."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise SpecError(f"package.json: cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise SpecError(f"{path}: not valid JSON ({exc}): npm cannot read it") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: must be a JSON object, not {type(data).__name__}")
    return data


def needs_install(manifest: dict[str, Any]) -> bool:
    """Whether npm has anything to install for this manifest."""
    return any(manifest.get(field) for field in _INSTALLED_FIELDS)


def _project_files(directory: Path) -> dict[str, bytes]:
    return {
        name: (directory / name).read_bytes()
        for name in PROJECT_FILES
        if (directory / name).is_file()
    }


async def install_packages(
    engine: Backend,
    package_json: Path,
    *,
    image: str = NPM_IMAGE,
    cache_root: Path | None = None,
    progress: Progress | None = None,
    timeout_s: float = 900.0,
) -> Path:
    """Install ``package_json``'s dependencies with ``image``'s npm; return the directory to mount.

    The returned directory holds ``node_modules``; mount it read-only at
    ``/function/.node_packages``. A cached result is reused without starting a
    container. Raises :class:`SpecError` for a manifest that is not JSON,
    :class:`RequirementsError` with npm's output when npm fails,
    :class:`ImageMissing` when the engine lacks ``image``.
    """
    say = progress or (lambda _: None)
    path = Path(package_json).resolve()
    manifest = read_package_json(path)
    files = _project_files(path.parent)
    image_id = await engine.image_id(image)
    if image_id is None:
        raise ImageMissing(image)
    settings = npm_settings(await host_npm_config(), os.environ)
    texts = [f"{name}\0{data.decode(errors='replace')}" for name, data in sorted(files.items())]
    key = cache_key("faaslab-packages-1", *texts, image_id, settings.key())
    root = (cache_root or default_packages_cache_root()).resolve()
    bound = log.bind(package_json=str(path), key=key)
    cached = cached_entry(root, key, MARKER)
    if cached is not None:
        bound.debug("packages.cached")
        say(f"packages of {path.parent.name}: cached ({cached})")
        return cached

    record = {
        "package_json": str(path),
        "dependencies": {f: manifest[f] for f in _INSTALLED_FIELDS if f in manifest},
        "image": image,
        "image_id": image_id,
        "options": settings.options,
        "created": time.time(),
    }

    async def fill(staging: Path) -> None:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        if needs_install(manifest):
            started = time.monotonic()
            say(f"installing packages of {path.parent.name} ({image})")
            await npm_install(
                engine,
                staging,
                image,
                settings,
                key=key,
                what=str(path),
                progress=say,
                timeout_s=timeout_s,
            )
            bound.info("packages.installed", install_s=round(time.monotonic() - started, 3))
        (staging / "node_modules").mkdir(exist_ok=True)
        # npm's own scratch files are of no use to the function.
        shutil.rmtree(staging / ".npm", ignore_errors=True)

    return await fill_entry(root, key, MARKER, record, fill)
