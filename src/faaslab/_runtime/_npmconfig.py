"""What an npm running in a container gets from the host's npm.

So that it reaches the same registry, with the same credentials, as the
host's npm does:

- the host's npm configuration files, read-only, where the container's npm
  reads them (``NPM_CONFIG_USERCONFIG``, ``NPM_CONFIG_GLOBALCONFIG``): the user
  file (``$NPM_CONFIG_USERCONFIG`` or ``~/.npmrc``) and the global one (what
  ``npm config list`` names as ``globalconfig``, else ``/etc/npmrc``). Registry,
  scoped registries, auth tokens, proxies and ``strict-ssl`` stay in the files:
  nothing secret is copied into an environment or a log;
- the host's ``npm_config_*`` environment variables (npm's own way to set any
  option), passed through, except the paths faaslab decides itself;
- a CA bundle, for networks that inspect TLS: ``FAASLAB_NPM_CA_BUNDLE``
  (``none`` to pass none), else npm's own ``cafile`` setting, else
  ``NODE_EXTRA_CA_CERTS`` / ``SSL_CERT_FILE``, else
  ``/etc/ssl/certs/ca-certificates.crt``; mounted read-only and named by
  ``NPM_CONFIG_CAFILE`` (npm's requests) and ``NODE_EXTRA_CA_CERTS`` (install
  scripts that fetch with Node's own https);
- the proxy variables, as for pip (``_pipconfig.PROXY_VARIABLES``). A registry
  or proxy on the host's loopback is not reachable from a container (a
  warning says so).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import msgspec
import structlog

from .._errors import SpecError
from ._pipconfig import CONTAINER_CA, DEFAULT_CA_BUNDLE, PROXY_VARIABLES

__all__ = (
    "NPM_CA_BUNDLE_ENV",
    "NpmSettings",
    "host_npm_config",
    "npm_settings",
)

log = structlog.get_logger()

NPM_CA_BUNDLE_ENV = "FAASLAB_NPM_CA_BUNDLE"
CONTAINER_USERCONFIG = "/faaslab/npm/userconfig"
CONTAINER_GLOBALCONFIG = "/faaslab/npm/globalconfig"
#: npm settings faaslab decides inside the container; the host's values are not passed.
_OWN_SETTINGS = frozenset(
    {"userconfig", "globalconfig", "cache", "prefix", "cafile", "global", "location"}
)


class NpmSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the container's npm gets from the host."""

    #: ``npm_config_*`` variables forwarded from the host's environment.
    options: dict[str, str]
    #: Proxy variables passed through.
    proxies: dict[str, str]
    #: The host CA bundle mounted for npm, or None.
    ca_bundle: str | None
    #: The host's user and global npmrc files mounted read-only, when they exist.
    userconfig: str | None
    globalconfig: str | None
    #: A digest of those files' contents: they decide what gets installed (registries).
    config_digest: str

    def env(self) -> dict[str, str]:
        env = {
            "HOME": "/tmp",
            "NPM_CONFIG_CACHE": "/tmp/.npm",
            "NPM_CONFIG_UPDATE_NOTIFIER": "false",
            "NPM_CONFIG_FUND": "false",
            "NPM_CONFIG_AUDIT": "false",
            "NPM_CONFIG_PROGRESS": "false",
            # Without a file of their own, the image's defaults and nothing of the host.
            "NPM_CONFIG_USERCONFIG": CONTAINER_USERCONFIG if self.userconfig else "/dev/null",
            "NPM_CONFIG_GLOBALCONFIG": CONTAINER_GLOBALCONFIG if self.globalconfig else "/dev/null",
            **self.options,
            **self.proxies,
        }
        if self.ca_bundle is not None:
            env |= {"NPM_CONFIG_CAFILE": CONTAINER_CA, "NODE_EXTRA_CA_CERTS": CONTAINER_CA}
        return env

    def binds(self) -> list[str]:
        binds = []
        if self.userconfig:
            binds.append(f"{self.userconfig}:{CONTAINER_USERCONFIG}:ro")
        if self.globalconfig:
            binds.append(f"{self.globalconfig}:{CONTAINER_GLOBALCONFIG}:ro")
        if self.ca_bundle is not None:
            binds.append(f"{self.ca_bundle}:{CONTAINER_CA}:ro")
        return binds

    def key(self) -> str:
        """What of these settings decides the installed result (not the CA, not proxies)."""
        return json.dumps([self.options, self.config_digest], sort_keys=True)


# -- pure parts ----------------------------------------------------------------


def _npmrc_value(path: Path, option: str) -> str | None:
    """``option``'s value in an npmrc (ini) file, or None."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == option:
            return value.strip().strip('"').strip("'")
    return None


def _readable_file(path: str | None) -> str | None:
    if not path:
        return None
    resolved = Path(path).expanduser()
    return str(resolved.resolve()) if resolved.is_file() else None


def _choose_ca_bundle(cafile: str | None, environ: Mapping[str, str]) -> str | None:
    explicit = environ.get(NPM_CA_BUNDLE_ENV)
    if explicit is not None:
        if explicit.strip().lower() in ("", "none"):
            return None
        if not Path(explicit).is_file():
            raise SpecError(f"{NPM_CA_BUNDLE_ENV}: {explicit!r} is not a file")
        return str(Path(explicit).resolve())
    for candidate in (
        cafile,
        environ.get("NODE_EXTRA_CA_CERTS"),
        environ.get("SSL_CERT_FILE"),
        DEFAULT_CA_BUNDLE,
    ):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return None


def _on_loopback(value: str) -> bool:
    host = urlsplit(value).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def npm_settings(config: Mapping[str, str], environ: Mapping[str, str]) -> NpmSettings:
    """What the container's npm gets (pure but for reading the npmrc files named).

    ``config`` is the host npm's answer (``userconfig``, ``globalconfig``,
    ``cafile``, ``registry``), or {} without a host npm: then the files are
    found as npm would find them.
    """
    home = environ.get("HOME", str(Path.home()))
    userconfig = _readable_file(
        config.get("userconfig")
        or environ.get("NPM_CONFIG_USERCONFIG")
        or environ.get("npm_config_userconfig")
        or os.path.join(home, ".npmrc")
    )
    globalconfig = _readable_file(
        config.get("globalconfig")
        or environ.get("NPM_CONFIG_GLOBALCONFIG")
        or environ.get("npm_config_globalconfig")
        or "/etc/npmrc"
    )
    options: dict[str, str] = {}
    for name, value in environ.items():
        if name.lower().startswith("npm_config_"):
            option = name[len("npm_config_") :].lower().replace("_", "-")
            if option not in _OWN_SETTINGS:
                options[name] = value
    cafile = config.get("cafile")
    for path in (userconfig, globalconfig):
        if not cafile and path:
            cafile = _npmrc_value(Path(path), "cafile")
    digest = hashlib.sha256()
    for path in (userconfig, globalconfig):
        digest.update(Path(path).read_bytes() if path else b"-")
        digest.update(b"\0")
    proxies = {k: environ[k] for k in PROXY_VARIABLES if environ.get(k)}
    registry = config.get("registry", "")
    for name, value in [("registry", registry), *options.items(), *proxies.items()]:
        if value and _on_loopback(value):
            log.warning("npm.loopback_unreachable", setting=name, value=value)
    return NpmSettings(
        options=options,
        proxies=proxies,
        ca_bundle=_choose_ca_bundle(cafile, environ),
        userconfig=userconfig,
        globalconfig=globalconfig,
        config_digest=digest.hexdigest()[:16],
    )


# -- the host's npm ------------------------------------------------------------

_npm_config_cache: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
_ASKED = ("userconfig", "globalconfig", "cafile", "registry")


async def host_npm_config() -> dict[str, str]:
    """What the host's npm says of its files, CA and registry; {} without npm.

    Asked once per process and ``npm_config_*`` environment.
    """
    env_key = tuple(sorted((k, v) for k, v in os.environ.items() if k.lower().startswith("npm_")))
    cached = _npm_config_cache.get(env_key)
    if cached is None:
        cached = _npm_config_cache[env_key] = await _ask_npm_config()
    return dict(cached)


async def _ask_npm_config() -> dict[str, str]:
    npm = shutil.which("npm")
    if npm is None:
        return {}
    try:
        result = await anyio.run_process([npm, "config", "list", "--json"], check=False)
        values = json.loads(result.stdout) if result.returncode == 0 else {}
    except (OSError, ValueError) as exc:
        log.warning("npm.no_host_config", error=str(exc))
        return {}
    if not isinstance(values, dict):
        return {}
    return {k: str(values[k]) for k in _ASKED if isinstance(values.get(k), str) and values[k]}
