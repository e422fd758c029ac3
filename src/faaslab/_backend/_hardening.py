"""The sandbox every container faaslab starts shares (pure: parts of create bodies).

Functions, storage servers and the requirements installer all run with the
same floor, so that every automated check of CIS Docker Benchmark section 5
that applies passes for each of them (numbering of CIS v1.7/1.8, as
docker-bench-security scripts it; its own older layout numbers the same
checks one lower):

==========  ==============================================  ============================
check       what docker-bench-security reads                 here
==========  ==============================================  ============================
5.4         ``HostConfig.CapAdd`` empty                       nothing added, ``CapDrop: ALL``
5.5         ``HostConfig.Privileged`` false                   false
5.10/16/17  ``NetworkMode``/``PidMode``/``IpcMode`` not host   never set to host
5.21/5.31   ``UTSMode``/``UsernsMode`` not host                never set
5.11        ``HostConfig.Memory`` not 0                       a limit, swap = memory
5.12        ``HostConfig.CpuShares`` not 0 (and ``NanoCpus``)  both set
5.13        ``HostConfig.ReadonlyRootfs`` true                 true, a tmpfs on /tmp
5.14        ``docker port`` never 0.0.0.0                      127.0.0.1 only (callers)
5.22        no ``seccomp=unconfined`` in ``SecurityOpt``       the engine's default profile
5.25        ``HostConfig.CgroupParent`` empty                  never set
5.26        ``no-new-privileges`` in ``SecurityOpt``           set
5.27        ``State.Health`` exists                            a ``Healthcheck`` per container
5.29        ``HostConfig.PidsLimit`` not 0/-1/nil              1024
5.30        not on the ``docker0`` bridge                      own networks only (callers)
==========  ==============================================  ============================

A health check runs a short process inside the container (in its cgroup), so
it is kept cheap and infrequent: see :data:`HEALTH_INTERVAL_S`.
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "FUNCTION_USER",
    "HEALTH_INTERVAL_S",
    "PIDS_LIMIT",
    "cpu_shares",
    "hardened_host_config",
    "healthcheck",
    "loopback_ports",
)

#: The unprivileged user (uid:gid) function code runs as, in every runtime
#: image and every function container, as Lambda runs code as a sandbox user:
#: it owns nothing on the host and can write only /tmp. A high id, clear of
#: the accounts a host has.
FUNCTION_USER = "10001:10001"
#: Processes (threads included) a container may have: a fork bomb stops there.
PIDS_LIMIT = 1024
#: Docker's own default interval. Each probe is a process in the container's
#: memory cgroup (measured for the bash probe of functions: 0.5-1.8 MB above
#: the idle level for 0.1-0.5 s, with ``docker exec``'s own runc process),
#: visible in a 1 ms profile: rare probes keep that negligible.
HEALTH_INTERVAL_S = 30.0
#: Probes while starting (``StartInterval``, API 1.44+; older engines ignore
#: it): a container is "healthy" within about this of its server answering,
#: not one whole interval later. Swarm waits for that: a task with a health
#: check is not "running" before its first passing probe.
START_INTERVAL_S = 0.5
_NS = 1_000_000_000


def cpu_shares(cpus: float) -> int:
    """CPU weight in proportion to the CPUs asked for (1024 = one CPU, Docker's default).

    The quota (``NanoCpus``) is the hard limit; shares order containers under
    contention and are what CIS 5.12 reads.
    """
    return max(2, round(1024 * cpus))


def hardened_host_config(
    *, memory_mb: int, cpus: float, tmp_mb: int | None = 64, read_only: bool = True
) -> dict[str, Any]:
    """The HostConfig entries every faaslab container carries.

    ``tmp_mb`` sizes the writable ``/tmp`` tmpfs (None: no tmpfs); tmpfs pages
    count against ``memory_mb`` in the container's cgroup, as any tmpfs does.
    """
    memory = memory_mb * 1024 * 1024
    host: dict[str, Any] = {
        "Memory": memory,
        "MemorySwap": memory,  # no swap: over the limit is an OOM kill, as on a cloud
        "NanoCpus": int(cpus * 1e9),
        "CpuShares": cpu_shares(cpus),
        "PidsLimit": PIDS_LIMIT,
        "Privileged": False,
        "CapDrop": ["ALL"],
        # The engine's default seccomp profile applies: never "seccomp=unconfined".
        "SecurityOpt": ["no-new-privileges"],
        "ReadonlyRootfs": read_only,
    }
    if tmp_mb is not None:
        host["Tmpfs"] = {"/tmp": f"rw,nosuid,nodev,size={tmp_mb}m,mode=1777"}
    return host


def healthcheck(
    test: list[str],
    *,
    interval_s: float = HEALTH_INTERVAL_S,
    timeout_s: float = 5.0,
    retries: int = 3,
    start_period_s: float = 30.0,
    start_interval_s: float = START_INTERVAL_S,
) -> dict[str, Any]:
    """A create body's ``Healthcheck`` (the Engine API counts in nanoseconds)."""
    return {
        "Test": ["CMD", *test],
        "Interval": int(interval_s * _NS),
        "Timeout": int(timeout_s * _NS),
        "Retries": retries,
        "StartPeriod": int(start_period_s * _NS),
        "StartInterval": int(start_interval_s * _NS),
    }


def loopback_ports(port: int, host_port: int | None = None) -> dict[str, Any]:
    """A create body's ``PortBindings``: ``port`` published on 127.0.0.1 only (CIS 5.14).

    ``host_port`` asks for that host port (a container recreated after an
    engine restart keeps its address); None lets the engine pick a free one,
    so parallel deployments never clash.
    """
    return {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port or "")}]}
