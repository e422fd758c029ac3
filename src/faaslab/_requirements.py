"""A function's ``requirements.txt``, installed for the runtime image's Python.

pip runs inside a container of the runtime image (``python3 -m pip install
--target``), so what it installs fits the image's Python (3.11, Linux, its
libc) whatever the host runs. The result lives in a cache,
``<cache_root>/<key>/lib/site-packages``, keyed by a hash of the
requirements text, the image id and the pip options, and is mounted
read-only at ``/function/.python_packages`` in function containers.

What the container's pip gets from the host, so that it reaches the same
package index the host's pip does:

- the host's pip options, as ``pip config list`` shows them (``index-url``,
  ``extra-index-url``, ``find-links``, ``constraint``, ``trusted-host``,
  timeouts...), as ``PIP_*`` variables; local ones (``file://`` indexes,
  find-links directories, constraint files) are mounted read-only at the same
  path (a ``file://`` index is mounted from its parent directory, the usual
  ``simple/`` + ``files/`` layout);
- a CA bundle, for networks that inspect TLS: ``FAASLAB_PIP_CA_BUNDLE``
  (``none`` to pass none), else pip's own ``cert`` setting, else
  ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``, else
  ``/etc/ssl/certs/ca-certificates.crt``; mounted read-only and named by
  ``PIP_CERT``, ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``;
- the proxy variables (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``,
  ``ALL_PROXY``, either case), passed through unchanged. A proxy or index on
  the host's loopback is not reachable from a container (a warning says so):
  give an address the Docker bridge reaches.

The container is on Docker's default bridge (outbound access, never the host
network), runs as the host user without capabilities, and is removed
afterwards whatever happens.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import msgspec
import structlog

from . import _labels
from ._engine import Engine
from ._errors import ImageMissing, RequirementsError, SpecError
from ._images import RUNTIME_IMAGE
from ._paths import state_dir

__all__ = (
    "CA_BUNDLE_ENV",
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

CA_BUNDLE_ENV = "FAASLAB_PIP_CA_BUNDLE"
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: Inside the pip container.
CONTAINER_CA = "/faaslab/ca-bundle.crt"
CONTAINER_REQUIREMENTS = "/faaslab/requirements"
CONTAINER_TARGET = "/faaslab/target"
SITE_PACKAGES = Path("lib") / "site-packages"
#: Written last into a finished cache entry, with what it was built from.
MARKER = ".faaslab-requirements.json"

#: pip options carried from the host's configuration to the container's pip.
FORWARDED_OPTIONS = (
    "index-url",
    "extra-index-url",
    "find-links",
    "constraint",
    "trusted-host",
    "default-timeout",
    "timeout",
    "retries",
    "no-index",
    "prefer-binary",
    "only-binary",
    "no-binary",
    "pre",
)
PROXY_VARIABLES = tuple(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)
#: Host paths never mounted over the container's own (a find-links of "/" and the like).
_SYSTEM_PATHS = frozenset(
    {
        "/",
        "/bin",
        "/etc",
        "/lib",
        "/lib64",
        "/opt",
        "/proc",
        "/sbin",
        "/sys",
        "/usr",
        "/var",
        "/tmp",
        "/function",
        "/faaslab",
    }
)
_STEP_BOUND_S = 30.0
_TAIL_LINES = 40


class PipSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the container's pip gets from the host."""

    #: Host pip options forwarded, as ``PIP_*`` variables.
    options: dict[str, str]
    #: Proxy variables passed through.
    proxies: dict[str, str]
    #: The host CA bundle mounted for pip, or None.
    ca_bundle: str | None
    #: Host paths mounted read-only at the same path (local indexes, find-links, constraints).
    mounts: list[str]

    def env(self) -> dict[str, str]:
        env = {
            "HOME": "/tmp",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
            "PIP_NO_INPUT": "1",
            "PIP_PROGRESS_BAR": "off",
            # The runtime's own packages (/opt/faaslab/lib) must not count as installed.
            "PYTHONPATH": "",
            **self.options,
            **self.proxies,
        }
        if self.ca_bundle is not None:
            env |= {
                "PIP_CERT": CONTAINER_CA,
                "REQUESTS_CA_BUNDLE": CONTAINER_CA,
                "SSL_CERT_FILE": CONTAINER_CA,
            }
        return env

    def binds(self) -> list[str]:
        binds = [f"{path}:{path}:ro" for path in self.mounts]
        if self.ca_bundle is not None:
            binds.append(f"{self.ca_bundle}:{CONTAINER_CA}:ro")
        return binds


# -- the host's pip configuration (pure parts first) --------------------------


def parse_pip_config_list(text: str) -> dict[str, str]:
    """``pip config list`` output → the effective value of each option.

    Lines read ``section.option='value'``; the environment (``:env:``) wins over
    the ``install`` section, which wins over ``global``, as in pip.
    """
    rank = {"global": 0, "install": 1, ":env:": 2}
    best: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        section, dot, option = key.strip().rpartition(".")
        if not sep or not dot or section not in rank:
            continue
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        if rank[section] >= best.get(option, (-1, ""))[0]:
            best[option] = (rank[section], str(value))
    return {option: value for option, (_, value) in best.items()}


def _local_path(entry: str) -> Path | None:
    """The local path a pip location names (``file://`` URL or plain path), else None."""
    parts = urlsplit(entry)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if not parts.scheme and entry.startswith("/"):
        return Path(entry)
    return None


def _on_loopback(entry: str) -> bool:
    host = urlsplit(entry).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _mounts_for(option: str, value: str) -> list[Path]:
    paths = []
    for entry in value.split():
        path = _local_path(entry)
        if path is None:
            continue
        if option in ("index-url", "extra-index-url"):
            # An index's pages link to its files relative to it (../../files/x.whl).
            path = path.parent
        paths.append(path)
    return paths


def _choose_ca_bundle(config: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    explicit = environ.get(CA_BUNDLE_ENV)
    if explicit is not None:
        if explicit.strip().lower() in ("", "none"):
            return None
        if not Path(explicit).is_file():
            raise SpecError(f"{CA_BUNDLE_ENV}: {explicit!r} is not a file")
        return str(Path(explicit).resolve())
    for candidate in (
        config.get("cert"),
        environ.get("REQUESTS_CA_BUNDLE"),
        environ.get("SSL_CERT_FILE"),
        DEFAULT_CA_BUNDLE,
    ):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return None


def pip_settings(config: Mapping[str, str], environ: Mapping[str, str]) -> PipSettings:
    """What the container's pip gets, from the host's pip config and environment (pure)."""
    options: dict[str, str] = {}
    mounts: list[Path] = []
    for option in FORWARDED_OPTIONS:
        value = config.get(option)
        if value is None:
            continue
        options["PIP_" + option.upper().replace("-", "_")] = value
        mounts.extend(p for p in _mounts_for(option, value) if p.exists())
    kept: list[str] = []
    for path in sorted({str(p.resolve()) for p in mounts}, key=len):
        if path in _SYSTEM_PATHS:
            log.warning("requirements.mount_skipped", path=path, reason="a system directory")
            continue
        if not any(path.startswith(parent.rstrip("/") + "/") for parent in kept):
            kept.append(path)
    proxies = {k: environ[k] for k in PROXY_VARIABLES if environ.get(k)}
    for name, value in [*options.items(), *proxies.items()]:
        if any(_on_loopback(entry) for entry in value.split()):
            # 127.0.0.1 inside the pip container is the container itself.
            log.warning("requirements.loopback_unreachable", setting=name, value=value)
    return PipSettings(
        options=options,
        proxies=proxies,
        ca_bundle=_choose_ca_bundle(config, environ),
        mounts=kept,
    )


_pip_config_cache: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


async def host_pip_config() -> dict[str, str]:
    """The host pip's effective options (``python -m pip config list``); {} without pip.

    Asked once per process and ``PIP_*`` environment: pip takes ~0.4 s to answer,
    and a cached install should cost nothing.
    """
    env_key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PIP_")))
    cached = _pip_config_cache.get(env_key)
    if cached is None:
        cached = _pip_config_cache[env_key] = await _ask_pip_config()
    return dict(cached)


async def _ask_pip_config() -> dict[str, str]:
    try:
        result = await anyio.run_process(
            [sys.executable, "-m", "pip", "config", "list"], check=False
        )
    except OSError as exc:
        log.warning("requirements.no_host_pip", error=str(exc))
        return {}
    if result.returncode != 0:
        log.warning("requirements.no_host_pip", error=result.stderr.decode(errors="replace"))
        return {}
    return parse_pip_config_list(result.stdout.decode(errors="replace"))


# -- cache --------------------------------------------------------------------


def default_cache_root() -> Path:
    return state_dir() / "requirements"


def _has_requirements(text: str) -> bool:
    return any(line.split("#", 1)[0].strip() for line in text.splitlines())


def cache_key(requirements_text: str, image_id: str, settings: PipSettings) -> str:
    """What decides the installed result: the requirements, the image, pip's options.

    (Proxies and the CA bundle change how pip reaches the index, not what it installs.)
    """
    digest = hashlib.sha256()
    for part in (
        "faaslab-requirements-1",
        requirements_text,
        image_id,
        json.dumps(settings.options, sort_keys=True),
    ):
        data = part.encode()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:32]


def _commit(staging: Path, final: Path, record: dict[str, Any]) -> None:
    """Mark the staged install finished and move it into place (atomic rename)."""
    (staging / MARKER).write_text(json.dumps(record, indent=1))
    try:
        staging.rename(final)
    except OSError:
        # Another install of the same key got there first: theirs is as good.
        if not (final / MARKER).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)


# -- install ------------------------------------------------------------------


async def install_requirements(
    engine: Engine,
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
    final = root / key
    bound = log.bind(requirements=str(path), key=key)
    if (final / MARKER).is_file():
        bound.debug("requirements.cached")
        say(f"requirements of {path.parent.name}: cached ({final})")
        return final

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    # Function containers run without CAP_DAC_OVERRIDE: everything must be world-readable.
    staging.chmod(0o755)
    (staging / SITE_PACKAGES).mkdir(parents=True)
    record = {
        "requirements": str(path),
        "text": text,
        "image": image,
        "image_id": image_id,
        "options": settings.options,
        "created": time.time(),
    }
    try:
        if _has_requirements(text):
            started = time.monotonic()
            say(f"installing requirements of {path.parent.name} ({image})")
            await _run_pip(engine, path, staging, image, key, settings, say, timeout_s)
            bound.info("requirements.installed", install_s=round(time.monotonic() - started, 3))
        await anyio.to_thread.run_sync(_commit, staging, final, record)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(staging, ignore_errors=True))
        raise
    return final


def _pip_container(
    requirements: Path, staging: Path, image: str, key: str, settings: PipSettings
) -> dict[str, Any]:
    """The engine's create body for the pip container (pure)."""
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
        "Env": [f"{k}={v}" for k, v in settings.env().items()],
        "Labels": {_labels.DEPLOYMENT: f"pip-{key[:12]}", _labels.ROLE: "pip"},
        "HostConfig": {
            "Binds": [
                # The whole directory: `-r other.txt` and `./local-package` resolve.
                f"{requirements.parent}:{CONTAINER_REQUIREMENTS}:ro",
                f"{staging}:{CONTAINER_TARGET}:rw",
                *settings.binds(),
            ],
            # Outbound access to the index through Docker's bridge; never the host network.
            "NetworkMode": "bridge",
            "Privileged": False,
            "SecurityOpt": ["no-new-privileges"],
            "CapDrop": ["ALL"],
            "PidsLimit": 1024,
        },
    }


async def _run_pip(
    engine: Engine,
    requirements: Path,
    staging: Path,
    image: str,
    key: str,
    settings: PipSettings,
    say: Progress,
    timeout_s: float,
) -> None:
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    container_id = ""
    name = f"faaslab-pip-{key[:12]}-{secrets.token_hex(3)}"
    try:
        with anyio.CancelScope(shield=True), anyio.fail_after(_STEP_BOUND_S):
            container_id = await engine.create_container(
                _pip_container(requirements, staging, image, key, settings), name=name
            )
        await engine.start_container(container_id)
        try:
            with anyio.fail_after(timeout_s):
                code = await _follow_until_exit(engine, container_id, tail, say)
        except TimeoutError:
            raise RequirementsError(
                f"installing {requirements}: pip did not finish within {timeout_s:g} s",
                output="\n".join(tail),
            ) from None
        if code != 0:
            raise RequirementsError(
                f"installing {requirements} failed: pip exited with code {code}",
                output="\n".join(tail),
            )
    finally:
        if container_id:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_STEP_BOUND_S):
                await engine.remove_container(container_id)


async def _follow_until_exit(
    engine: Engine, container_id: str, tail: deque[str], say: Progress
) -> int:
    """Pass pip's output on as progress until the container exits; return its status."""
    followed = anyio.Event()

    async def follow() -> None:
        try:
            async for line in engine.follow_logs(container_id):
                tail.append(line)
                say(f"  pip: {line}")
        finally:
            followed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        code = await engine.wait_container(container_id)
        # The log stream ends with the container; a moment more for its last lines.
        with anyio.move_on_after(5):
            await followed.wait()
        tg.cancel_scope.cancel()
    if not tail:
        tail.extend((await engine.container_logs(container_id, tail=_TAIL_LINES)).splitlines())
    return code
