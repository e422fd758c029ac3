"""A function's ``requirements.txt``, installed for the runtime image's Python.

pip runs inside a container of the runtime image (``python3 -m pip install
--target``), so what it installs fits the image's Python (3.11, Linux, its
libc) whatever the host runs. The result lives in a cache,
``<cache_root>/<key>/lib/site-packages``, keyed by a hash of the
requirements text, the image id and the pip options, and is mounted
read-only at ``/function/.python_packages`` in function containers.

What the container's pip gets from the host (index, CA bundle, proxies) is
decided in ``_pipconfig``. The container is on a bridge network of its own
(outbound access through the engine's NAT; never the host network, nor
Docker's default ``docker0`` bridge: CIS 5.30), runs as the host user
without capabilities on a read-only root filesystem (pip's temporary files
go to the cache entry being built, on disk, not to memory), with memory,
CPU and PIDs limits and a liveness health check, and is removed afterwards
with its network whatever happens.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from .._backend import (
    Backend,
    Label,
    hardened_host_config,
    healthcheck,
    owner_token,
    run_to_exit,
)
from .._errors import ImageMissing, RequirementsError, SpecError
from .._util import state_dir
from ._cache import cache_key as _digest
from ._cache import cached_entry, check_install, fill_entry
from ._pipconfig import (
    CA_BUNDLE_ENV,
    CONTAINER_CA,
    PipSettings,
    host_pip_config,
    parse_pip_config_list,
    pip_settings,
)
from ._python_images import RUNTIME_IMAGE

__all__ = (
    "CA_BUNDLE_ENV",
    "CONTAINER_CA",
    "PipSettings",
    "RequirementsError",
    "default_cache_root",
    "host_pip_config",
    "install_requirements",
    "parse_pip_config_list",
    "pip_settings",
)

log = structlog.get_logger()

Progress = Callable[[str], None]

CONTAINER_REQUIREMENTS = "/faaslab/requirements"
CONTAINER_TARGET = "/faaslab/target"
SITE_PACKAGES = Path("lib") / "site-packages"
#: Written last into a finished cache entry, with what it was built from.
MARKER = ".faaslab-requirements.json"
#: The installer's limits: generous (some wheels unpack to gigabytes), but bounded.
PIP_MEMORY_MB = 4096
PIP_CPUS = 2.0
#: pip's temporary files: inside the entry being built (disk), removed before it is committed.
PIP_TMP = ".pip-tmp"


# -- cache --------------------------------------------------------------------


def default_cache_root() -> Path:
    return state_dir() / "requirements"


def _has_requirements(text: str) -> bool:
    return any(line.split("#", 1)[0].strip() for line in text.splitlines())


def cache_key(requirements_text: str, image_id: str, settings: PipSettings) -> str:
    """What decides the installed result: the requirements, the image, pip's options.

    (Proxies and the CA bundle change how pip reaches the index, not what it installs.)
    """
    options = json.dumps(settings.options, sort_keys=True)
    return _digest("faaslab-requirements-1", requirements_text, image_id, options)


# -- install ------------------------------------------------------------------


async def install_requirements(
    engine: Backend,
    requirements: Path,
    *,
    image: str = RUNTIME_IMAGE,
    cache_root: Path | None = None,
    progress: Progress | None = None,
    timeout_s: float = 900.0,
) -> Path:
    """Install ``requirements`` for ``image``'s Python; return the directory to mount.

    The returned directory holds ``lib/site-packages``; mount it read-only at
    ``/function/.python_packages``. A cached result is reused without starting
    a container. Raises :class:`RequirementsError` with pip's output when pip
    fails, :class:`ImageMissing` when the engine lacks ``image``.
    """
    say = progress or (lambda _: None)
    path = Path(requirements).resolve()
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"requirements: cannot read {requirements}: {exc.strerror}") from exc
    image_id = await engine.image_id(image)
    if image_id is None:
        raise ImageMissing(image)
    settings = pip_settings(await host_pip_config(), os.environ)
    key = cache_key(text, image_id, settings)
    root = (cache_root or default_cache_root()).resolve()
    bound = log.bind(requirements=str(path), key=key)
    cached = cached_entry(root, key, MARKER)
    if cached is not None:
        bound.debug("requirements.cached")
        say(f"requirements of {path.parent.name}: cached ({cached})")
        return cached

    record = {
        "requirements": str(path),
        "text": text,
        "image": image,
        "image_id": image_id,
        "options": settings.options,
        "created": time.time(),
    }

    async def fill(staging: Path) -> None:
        (staging / SITE_PACKAGES).mkdir(parents=True)
        if _has_requirements(text):
            started = time.monotonic()
            say(f"installing requirements of {path.parent.name} ({image})")
            await _run_pip(engine, path, staging, image, key, settings, say, timeout_s)
            bound.info("requirements.installed", install_s=round(time.monotonic() - started, 3))

    return await fill_entry(root, key, MARKER, record, fill)


def _pip_labels(key: str) -> dict[str, str]:
    """The installer's objects: found by `gc`, owned by this process (a live owner is no orphan)."""
    return {Label.DEPLOYMENT: f"pip-{key[:12]}", Label.ROLE: "pip", Label.OWNER: owner_token()}


def _pip_container(
    requirements: Path,
    staging: Path,
    image: str,
    key: str,
    settings: PipSettings,
) -> dict[str, Any]:
    """The engine's create body for the pip container (pure)."""
    env = {**settings.env(), "TMPDIR": f"{CONTAINER_TARGET}/{PIP_TMP}"}
    return {
        "Image": image,
        "Entrypoint": ["python3"],
        "Cmd": [
            "-m",
            "pip",
            "install",
            "--target",
            f"{CONTAINER_TARGET}/{SITE_PACKAGES}",
            "-r",
            f"{CONTAINER_REQUIREMENTS}/{requirements.name}",
        ],
        # As the host user: the cache stays the user's to read and delete.
        "User": f"{os.getuid()}:{os.getgid()}",
        "WorkingDir": CONTAINER_REQUIREMENTS,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": _pip_labels(key),
        # pip is a batch job with no server to probe: the check says it still runs.
        "Healthcheck": healthcheck(
            ["bash", "-c", "kill -0 1"], interval_s=10.0, start_period_s=10.0
        ),
        "HostConfig": {
            **hardened_host_config(memory_mb=PIP_MEMORY_MB, cpus=PIP_CPUS, tmp_mb=64),
            "Binds": [
                # The whole directory: `-r other.txt` and `./local-package` resolve.
                f"{requirements.parent}:{CONTAINER_REQUIREMENTS}:ro",
                f"{staging}:{CONTAINER_TARGET}:rw",
                *settings.binds(),
            ],
            # Outbound access to the index through a bridge network of its own
            # (run_to_exit's own_network); never the host network.
        },
    }


async def _run_pip(
    engine: Backend,
    requirements: Path,
    staging: Path,
    image: str,
    key: str,
    settings: PipSettings,
    say: Progress,
    timeout_s: float,
) -> None:
    (staging / PIP_TMP).mkdir()
    try:
        result = await run_to_exit(
            engine,
            _pip_container(requirements, staging, image, key, settings),
            name=f"faaslab-pip-{key[:12]}-{secrets.token_hex(3)}",
            timeout_s=timeout_s,
            on_line=lambda line: say(f"  pip: {line}"),
            own_network=True,
        )
    finally:
        shutil.rmtree(staging / PIP_TMP, ignore_errors=True)
    check_install(result, str(requirements), "pip", timeout_s)
