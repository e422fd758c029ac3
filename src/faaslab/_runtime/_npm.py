"""``npm install`` in a container of the installer image, for a function or the runtime image.

The project directory (``package.json`` and what else npm reads of a project)
is mounted read-write as the container's working directory, and
``node_modules`` appears in it. npm gets the host's configuration
(``_npmconfig``), a bridge network of its own, the host user, no
capabilities, a read-only root with a tmpfs ``/tmp`` (its HOME), limits and
a liveness health check (``_backend._hardening``); the container and its
network are removed whatever happens.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._backend import Backend, Label, hardened_host_config, healthcheck, run_to_exit
from ._cache import check_install
from ._npmconfig import NpmSettings

__all__ = ("npm_install",)

CONTAINER_TARGET = "/faaslab/target"
#: The installer's limits: generous (a tree like aws-sdk's unpacks to ~100 MB), but bounded.
NPM_MEMORY_MB = 4096
NPM_CPUS = 2.0
NPM_TMP_MB = 1024


def _npm_container(
    staging: Path, image: str, key: str, settings: NpmSettings, role: str
) -> dict[str, Any]:
    """The engine's create body for the npm container (pure)."""
    return {
        "Image": image,
        "Entrypoint": ["npm"],
        # Errors only: as root without CAP_CHOWN, npm warns for every file it
        # cannot hand to the owner its tarball names (harmless: it stays ours).
        "Cmd": ["install", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
        # As the host user: the cache stays the user's to read and delete.
        "User": f"{os.getuid()}:{os.getgid()}",
        "WorkingDir": CONTAINER_TARGET,
        "Env": [f"{k}={v}" for k, v in settings.env().items()],
        "Labels": {Label.DEPLOYMENT: f"npm-{key[:12]}", Label.ROLE: role},
        # npm is a batch job with no server to probe: the check says it still runs.
        "Healthcheck": healthcheck(
            ["bash", "-c", "kill -0 1"], interval_s=10.0, start_period_s=10.0
        ),
        "HostConfig": {
            # HOME is /tmp (``_npmconfig``): npm's cache and temporary files
            # go to the tmpfs, so it is sized for a large tree's tarballs.
            **hardened_host_config(memory_mb=NPM_MEMORY_MB, cpus=NPM_CPUS, tmp_mb=NPM_TMP_MB),
            "Binds": [f"{staging}:{CONTAINER_TARGET}:rw", *settings.binds()],
        },
    }


async def npm_install(
    engine: Backend,
    project: Path,
    image: str,
    settings: NpmSettings,
    *,
    key: str,
    what: str,
    progress: Callable[[str], None],
    timeout_s: float = 900.0,
    role: str = "npm",
) -> None:
    """``npm install --omit=dev`` in ``project`` (holding package.json), in ``image``."""
    result = await run_to_exit(
        engine,
        _npm_container(project, image, key, settings, role),
        name=f"faaslab-npm-{key[:12]}-{secrets.token_hex(3)}",
        timeout_s=timeout_s,
        on_line=lambda line: progress(f"  npm: {line}"),
        own_network=True,
    )
    check_install(result, what, "npm", timeout_s)
