"""A container's create body as a Swarm service spec (pure, no I/O).

The sandbox is written once, in the Engine API's create-container shape
(``_instance``); a Swarm service says the same things in other places:
``Cmd`` becomes ``Args``, ``HostConfig.Binds`` become ``Mounts``, limits go
to ``Resources.Limits``, capabilities to ``CapabilityDrop``/``CapabilityAdd``
(API 1.41+). What a service cannot say on this API (``no-new-privileges``
before API 1.46, ``MemorySwap``, ``CpuShares``: a service has only the
``NanoCPUs`` quota, the health check before API 1.44: see
:func:`service_spec`) is returned as a gap, so the backend can say
so instead of silently running a weaker sandbox. Ports, networks and
restarts are the backend's: every instance is one task (replicas 1, restart
condition ``none``: faaslab's supervisor decides restarts), on the
deployment's overlay under its alias, endpoint mode ``dnsrr`` (no virtual
IP: nothing goes through IPVS or the ingress mesh).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ._instance import InstanceRequest

__all__ = ("ServiceSpec", "mounts_of", "service_spec", "tmpfs_bytes")

#: HostConfig keys the translation knows; anything else is reported as a gap.
_KNOWN_HOST = frozenset(
    {
        "Binds",
        "Mounts",
        "Tmpfs",
        "PortBindings",
        "NetworkMode",
        "Memory",
        "MemorySwap",
        "NanoCpus",
        "PidsLimit",
        "Privileged",
        "SecurityOpt",
        "CapDrop",
        "CapAdd",
        "Init",
        "ReadonlyRootfs",
        "Ulimits",
        "Sysctls",
        "ShmSize",
    }
)
_SIZE = re.compile(r"^(\d+)([kmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class ServiceSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A service create body, and what of the sandbox it could not carry."""

    body: dict[str, Any]
    gaps: tuple[str, ...] = ()


def tmpfs_bytes(options: str) -> int | None:
    """``size=64m`` of a tmpfs option string in bytes (None when absent)."""
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key.strip() == "size":
            match = _SIZE.match(value.strip())
            if match:
                return int(match.group(1)) * _UNITS[match.group(2).lower()]
    return None


def mounts_of(host: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``Binds``, ``Mounts`` and ``Tmpfs`` of a HostConfig as service mounts."""
    mounts: list[dict[str, Any]] = []
    for bind in host.get("Binds") or []:
        parts = str(bind).split(":")
        source, target = parts[0], parts[1]
        mode = parts[2] if len(parts) > 2 else "rw"
        mounts.append(
            {
                # A path is a host directory; anything else names a volume.
                "Type": "bind" if source.startswith("/") else "volume",
                "Source": source,
                "Target": target,
                "ReadOnly": "ro" in mode.split(","),
            }
        )
    mounts.extend(dict(mount) for mount in host.get("Mounts") or [])
    for target, options in (host.get("Tmpfs") or {}).items():
        mount: dict[str, Any] = {"Type": "tmpfs", "Target": target}
        size = tmpfs_bytes(str(options))
        if size is not None:
            mount["TmpfsOptions"] = {"SizeBytes": size}
        mounts.append(mount)
    return mounts


def service_spec(
    request: InstanceRequest,
    *,
    image: str,
    publish_host_mode: bool,
    constraints: Sequence[str] = (),
    replicas: int = 1,
    global_mode: bool = False,
    secrets: Sequence[Mapping[str, Any]] = (),
    health_start_interval: bool = True,
) -> ServiceSpec:
    """The service create body of one instance (one task), and the sandbox's gaps.

    ``health_start_interval``: the engine knows the health check's
    ``StartInterval`` (API 1.44+). Without it the check is left out (a gap):
    Swarm holds a task in "starting" until its first passing probe, a whole
    interval (30 s) after the start, and faaslab checks ``/alive`` itself.
    """
    config = request.container
    host: Mapping[str, Any] = config.get("HostConfig") or {}
    gaps = [f"HostConfig.{key}" for key in host if key not in _KNOWN_HOST]
    security = [str(option) for option in host.get("SecurityOpt") or []]
    if security:
        gaps.extend(f"SecurityOpt {option}" for option in security)
    if host.get("MemorySwap") not in (None, host.get("Memory")):
        gaps.append("HostConfig.MemorySwap")
    if host.get("Privileged"):
        gaps.append("HostConfig.Privileged")
    labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    container: dict[str, Any] = {
        "Image": image,
        "Env": list(config.get("Env") or []),
        "Labels": labels,
        "Mounts": mounts_of(host),
        "Init": bool(host.get("Init", False)),
        "ReadOnly": bool(host.get("ReadonlyRootfs", False)),
        "Hostname": request.alias,
        "StopGracePeriod": int(request.stop_grace_s * 1e9),
    }
    if config.get("Cmd") is not None:
        container["Args"] = list(config["Cmd"])
    if config.get("Entrypoint") is not None:
        container["Command"] = list(config["Entrypoint"])
    for ours, theirs in (("User", "User"), ("WorkingDir", "Dir"), ("StopSignal", "StopSignal")):
        if config.get(ours):
            container[theirs] = config[ours]
    if config.get("Healthcheck"):
        if health_start_interval:
            container["Healthcheck"] = config["Healthcheck"]
        else:
            gaps.append("Healthcheck (no StartInterval before API 1.44)")
    if host.get("CapDrop"):
        container["CapabilityDrop"] = list(host["CapDrop"])
    if host.get("CapAdd"):
        container["CapabilityAdd"] = list(host["CapAdd"])
    if host.get("Ulimits"):
        container["Ulimits"] = list(host["Ulimits"])
    if host.get("Sysctls"):
        container["Sysctls"] = dict(host["Sysctls"])
    if secrets:
        container["Secrets"] = [dict(secret) for secret in secrets]
    limits: dict[str, Any] = {}
    if host.get("Memory"):
        limits["MemoryBytes"] = int(host["Memory"])
    if host.get("NanoCpus"):
        limits["NanoCPUs"] = int(host["NanoCpus"])
    if host.get("PidsLimit"):
        limits["Pids"] = int(host["PidsLimit"])
    placement = [*request.placement, *constraints]
    if request.node:
        placement.append(f"node.id=={request.node}")
    endpoint: dict[str, Any] = {"Mode": "dnsrr"}
    if publish_host_mode:
        endpoint["Ports"] = [
            {"Protocol": "tcp", "TargetPort": request.port, "PublishMode": "host"}
        ]
    body: dict[str, Any] = {
        "Name": request.name,
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": limits},
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Placement": {"Constraints": placement},
            "Networks": [{"Target": request.network, "Aliases": [request.alias]}],
        },
        "Mode": {"Global": {}} if global_mode else {"Replicated": {"Replicas": replicas}},
        "EndpointSpec": endpoint,
    }
    return ServiceSpec(body=body, gaps=tuple(gaps))
