"""What a pip running in a container gets from the host's pip.

So that it reaches the same package index the host's pip does:

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
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
import msgspec
import structlog

from .._errors import SpecError

__all__ = (
    "CA_BUNDLE_ENV",
    "CONTAINER_CA",
    "FORWARDED_OPTIONS",
    "PROXY_VARIABLES",
    "PipSettings",
    "host_pip_config",
    "parse_pip_config_list",
    "pip_settings",
)

log = structlog.get_logger()

CA_BUNDLE_ENV = "FAASLAB_PIP_CA_BUNDLE"
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: Inside the pip container.
CONTAINER_CA = "/faaslab/ca-bundle.crt"

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
