"""Where the kernel accounts a container's memory and CPU time: cgroup discovery (pure).

Given a process id (a container's main process), find the file that holds its
cgroup's current memory usage and the one that holds its peak, whatever the
host's layout is; and the file that holds the CPU time it used
(:func:`find_cpu_file`: ``cpuacct.usage`` in ns on v1, ``cpu.stat``'s
``usage_usec`` on v2). Nothing here is hard-coded to one layout; every root is a
parameter so that tests run on fake trees.

Layouts seen in the wild (``<id>`` is the full container id)::

    v1 cgroupfs   /sys/fs/cgroup/memory/docker/<id>/memory.usage_in_bytes
    v1 systemd    /sys/fs/cgroup/memory/system.slice/docker-<id>.scope/memory.usage_in_bytes
    v2 systemd    /sys/fs/cgroup/system.slice/docker-<id>.scope/memory.current
    v2 cgroupfs   /sys/fs/cgroup/docker/<id>/memory.current
    hybrid        v1 controllers plus a v2 tree at /sys/fs/cgroup/unified

with peaks in ``memory.max_usage_in_bytes`` (v1) and ``memory.peak`` (v2,
Linux >= 5.19). ``--cgroup-parent`` gives "custom" parents for both versions.

/proc/<pid>/cgroup names the cgroup as seen from *our* cgroup namespace; when
we run inside a container ourselves that path may not exist under our
/sys/fs/cgroup. Then, given the container id, we search the memory hierarchy
for a directory whose name contains it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import msgspec

from .._errors import SamplingError

__all__ = (
    "CpuFile",
    "HostCgroups",
    "MemoryFiles",
    "cgroup_version",
    "describe_host_cgroups",
    "find_cpu_file",
    "find_memory_files",
    "parse_cpu_usage_us",
)

PROC_ROOT = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: How deep the fallback search descends below a hierarchy's root.
SEARCH_DEPTH = 6

_V1_USAGE, _V1_PEAK = "memory.usage_in_bytes", "memory.max_usage_in_bytes"
_V2_USAGE, _V2_PEAK = "memory.current", "memory.peak"
_V1_CPU, _V2_CPU = "cpuacct.usage", "cpu.stat"
_SYSTEMD_SCOPE = re.compile(r"docker-[0-9a-f]{12,64}\.scope")
_HEX_ID = re.compile(r"[0-9a-f]{12,64}")


class MemoryFiles(msgspec.Struct, frozen=True, kw_only=True):
    """The memory accounting files of one cgroup."""

    #: Current usage in bytes (includes page cache): the file to sample.
    usage: str
    #: The kernel's peak watermark, None when this kernel has none.
    peak: str | None
    #: 1 or 2.
    version: int
    #: "v1-cgroupfs", "v1-systemd", "v1-custom", "v2-cgroupfs", "v2-systemd"
    #: or "v2-custom": the cgroup version and the shape of the path.
    layout: str
    #: The cgroup path (as /proc/<pid>/cgroup gave it, or as found by search).
    cgroup: str
    #: "proc" when /proc/<pid>/cgroup led here, "search" when found by container id.
    found_by: str = "proc"


class CpuFile(msgspec.Struct, frozen=True, kw_only=True):
    """The CPU accounting file of one cgroup (user + system time of all its tasks)."""

    #: v1 ``cpuacct.usage`` (nanoseconds) or v2 ``cpu.stat`` (its ``usage_usec`` line).
    path: str
    #: 1 or 2.
    version: int
    #: The cgroup path (as /proc/<pid>/cgroup gave it, or as found by search).
    cgroup: str
    found_by: str = "proc"


class HostCgroups(msgspec.Struct, frozen=True, kw_only=True):
    """What a `doctor` command says about the host's cgroups."""

    #: "v1", "v2", "hybrid" (v1 controllers beside a v2 tree) or "none".
    version: str
    #: Which hierarchy accounts memory: "v1", "v2" or "none".
    memory_hierarchy: str
    #: Controllers on v1 hierarchies, each with its mount point.
    v1_controllers: dict[str, str]
    #: Where the v2 tree is mounted, if anywhere.
    v2_mount: str | None
    #: Controllers enabled at the v2 root (its cgroup.controllers).
    v2_controllers: tuple[str, ...]
    #: This process's own memory cgroup, as /proc/self/cgroup says.
    own_memory_cgroup: str | None


class _CgroupLine(msgspec.Struct, frozen=True):
    hierarchy: int
    controllers: tuple[str, ...]
    path: str


def find_memory_files(
    pid: int | None,
    *,
    container_id: str | None = None,
    proc_root: Path = PROC_ROOT,
    cgroup_root: Path = CGROUP_ROOT,
) -> MemoryFiles:
    """The memory files of `pid`'s cgroup; SamplingError says what was tried.

    Prefers the v1 memory controller when it holds the cgroup (hybrid hosts
    list both), else the v2 tree (at the root, or at ``unified/`` on hybrid
    hosts). With `container_id`, falls back to searching the hierarchies for
    a directory named after it. `pid` may be None to search only.
    """
    tried: list[str] = []
    found = _discover(pid, container_id, "memory", (), _probe, proc_root, cgroup_root, tried)
    if found:
        return found
    who = f"pid {pid}" if pid is not None else "no pid"
    if container_id:
        who += f", container {container_id}"
    raise SamplingError(
        f"no readable cgroup memory file for {who}; tried:\n  " + "\n  ".join(tried)
    )


def find_cpu_file(
    pid: int | None,
    *,
    container_id: str | None = None,
    proc_root: Path = PROC_ROOT,
    cgroup_root: Path = CGROUP_ROOT,
) -> CpuFile:
    """The CPU accounting file of `pid`'s cgroup; SamplingError says what was tried.

    Found as the memory file is: the v1 ``cpuacct`` controller (mounted alone
    or with ``cpu``) when it holds the cgroup, else the v2 tree (at the root
    or at ``unified/``), else a search by container id.
    """
    tried: list[str] = []
    # Most v1 hosts mount cpu and cpuacct together; this one apart.
    mounts = ("cpu,cpuacct",)
    found = _discover(
        pid, container_id, "cpuacct", mounts, _probe_cpu, proc_root, cgroup_root, tried
    )
    if found:
        return found
    who = f"pid {pid}" if pid is not None else "no pid"
    raise SamplingError(f"no readable cgroup CPU file for {who}; tried:\n  " + "\n  ".join(tried))


def parse_cpu_usage_us(version: int, text: bytes) -> int:
    """CPU time in µs from the file's content (v1: ns as one number; v2: cpu.stat)."""
    if version == 1:
        return int(text) // 1000
    for line in text.splitlines():
        key, _, value = line.partition(b" ")
        if key == b"usage_usec":
            return int(value)
    raise ValueError("cpu.stat has no usage_usec line")


def _probe_cpu(
    directory: Path, version: int, cgroup_path: str, found_by: str, tried: list[str]
) -> CpuFile | None:
    path = directory / (_V1_CPU if version == 1 else _V2_CPU)
    try:
        parse_cpu_usage_us(version, path.read_bytes())
    except FileNotFoundError:
        tried.append(f"{path} (missing)")
        return None
    except (OSError, ValueError) as exc:
        tried.append(f"{path} ({exc})")
        return None
    return CpuFile(path=str(path), version=version, cgroup=cgroup_path, found_by=found_by)


def cgroup_version(cgroup_root: Path = CGROUP_ROOT) -> str:
    """ "v2", "hybrid" (v1 controllers and a v2 tree at unified/), "v1" or "none"."""
    if (cgroup_root / "cgroup.controllers").is_file():
        return "v2"
    if (cgroup_root / "unified" / "cgroup.controllers").is_file():
        return "hybrid"
    try:
        children = list(cgroup_root.iterdir())
    except OSError:
        return "none"
    if any((child / "cgroup.procs").is_file() for child in children if child.is_dir()):
        return "v1"
    return "none"


def describe_host_cgroups(
    *,
    cgroup_root: Path = CGROUP_ROOT,
    proc_root: Path = PROC_ROOT,
    mounts_file: Path | None = None,
) -> HostCgroups:
    """The host's cgroup set-up, for a `doctor` command. Never raises for a
    missing file: an unreadable piece is reported as absent."""
    mounts_file = mounts_file or proc_root / "self" / "mounts"
    v1_controllers: dict[str, str] = {}
    v2_mount: str | None = None
    for mount_point, fstype, options in _read_mounts(mounts_file):
        if fstype == "cgroup2" and v2_mount is None:
            v2_mount = mount_point
        elif fstype == "cgroup":
            for option in options:
                if option in _V1_CONTROLLERS or option.startswith("name="):
                    v1_controllers[option] = mount_point
    v2_controllers: tuple[str, ...] = ()
    if v2_mount is not None:
        with contextlib.suppress(OSError):
            v2_controllers = tuple(Path(v2_mount, "cgroup.controllers").read_text().split())
    if "memory" in v1_controllers:
        memory_hierarchy = "v1"
    elif "memory" in v2_controllers:
        memory_hierarchy = "v2"
    else:
        memory_hierarchy = "none"
    own: str | None = None
    try:
        for line in _parse_proc_cgroup((proc_root / "self" / "cgroup").read_text()):
            is_memory = "memory" in line.controllers
            if is_memory or (line.hierarchy == 0 and memory_hierarchy == "v2"):
                own = line.path
                break
    except OSError:
        pass
    return HostCgroups(
        version=cgroup_version(cgroup_root),
        memory_hierarchy=memory_hierarchy,
        v1_controllers=v1_controllers,
        v2_mount=v2_mount,
        v2_controllers=v2_controllers,
        own_memory_cgroup=own,
    )


# -- helpers -------------------------------------------------------------------

_V1_CONTROLLERS = frozenset(
    [
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "hugetlb",
        "memory",
        "misc",
        "net_cls",
        "net_prio",
        "perf_event",
        "pids",
        "rdma",
    ]
)


def _read_proc_cgroup(path: Path, tried: list[str]) -> list[_CgroupLine]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        tried.append(f"{path} (missing: the process is gone)")
        return []
    except PermissionError as exc:
        raise SamplingError(f"permission denied reading {path}: {exc.strerror}") from exc
    except OSError as exc:
        tried.append(f"{path} ({exc.strerror or exc})")
        return []
    return _parse_proc_cgroup(text)


def _parse_proc_cgroup(text: str) -> list[_CgroupLine]:
    """Lines ``hierarchy-id:controller,list:/path`` (the path may hold colons)."""
    lines = []
    for raw in text.splitlines():
        parts = raw.split(":", 2)
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        controllers = tuple(c for c in parts[1].split(",") if c)
        lines.append(_CgroupLine(int(parts[0]), controllers, parts[2]))
    return lines


def _relative(cgroup_path: str) -> str:
    """The cgroup path made relative, without climbing above the root.

    Seen from another cgroup namespace a path can start with "/.."; clamping
    those at the root is the best guess (the search covers the rest)."""
    return posixpath.normpath("/" + cgroup_path).lstrip("/")


def _layout(version: int, cgroup_path: str) -> str:
    parts = [p for p in cgroup_path.split("/") if p]
    name = parts[-1] if parts else ""
    parent = parts[-2] if len(parts) > 1 else ""
    if _SYSTEMD_SCOPE.fullmatch(name):
        driver = "systemd"
    elif parent == "docker" and _HEX_ID.fullmatch(name):
        driver = "cgroupfs"
    else:
        driver = "custom"
    return f"v{version}-{driver}"


def _probe(
    directory: Path, version: int, cgroup_path: str, found_by: str, tried: list[str]
) -> MemoryFiles | None:
    usage_name, peak_name = (_V1_USAGE, _V1_PEAK) if version == 1 else (_V2_USAGE, _V2_PEAK)
    usage = directory / usage_name
    problem = _check_readable(usage)
    if problem:
        tried.append(f"{usage} ({problem})")
        return None
    peak = directory / peak_name
    return MemoryFiles(
        usage=str(usage),
        peak=str(peak) if peak.is_file() else None,
        version=version,
        layout=_layout(version, cgroup_path),
        cgroup=cgroup_path,
        found_by=found_by,
    )


def _check_readable(path: Path) -> str | None:
    """None when `path` reads as a number, else why not. Permission denied
    raises at once: no other candidate would fare better."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return "missing"
    except PermissionError as exc:
        raise SamplingError(
            f"permission denied opening {path}: sampling cgroup files needs read access "
            "to the cgroup tree (run as root, or use the Docker stats fallback)"
        ) from exc
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        int(os.pread(fd, 64, 0))
    except PermissionError as exc:
        raise SamplingError(f"permission denied reading {path}") from exc
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            return "a directory, not a file"
        return exc.strerror or str(exc)
    except ValueError:
        return "does not hold a number"
    finally:
        os.close(fd)
    return None


_Found = TypeVar("_Found", MemoryFiles, CpuFile)
#: Probes a cgroup directory: (directory, version, cgroup path, found by, tried).
_Probe = Callable[[Path, int, str, str, list[str]], _Found | None]


def _discover(
    pid: int | None,
    container_id: str | None,
    controller: str,
    mounts: tuple[str, ...],
    probe: _Probe[_Found],
    proc_root: Path,
    cgroup_root: Path,
    tried: list[str],
) -> _Found | None:
    """The v1 ``controller``'s cgroup of `pid`, else its v2 cgroup, else a search.

    v1 hierarchies are tried at the controller's own mount, at the mount
    named by all its controllers (``cpu,cpuacct``) and at ``mounts``."""
    lines: list[_CgroupLine] = []
    if pid is not None:
        lines = _read_proc_cgroup(proc_root / str(pid) / "cgroup", tried)
    for line in lines:
        if controller in line.controllers:
            relative = _relative(line.path)
            for mount in dict.fromkeys((controller, ",".join(line.controllers), *mounts)):
                found = probe(cgroup_root / mount / relative, 1, line.path, "proc", tried)
                if found:
                    return found
    for line in lines:
        if line.hierarchy == 0 and not line.controllers:
            relative = _relative(line.path)
            for base in (cgroup_root, cgroup_root / "unified"):
                found = probe(base / relative, 2, line.path, "proc", tried)
                if found:
                    return found
    if container_id:
        return _search(container_id, controller, probe, cgroup_root, tried)
    return None


def _search(
    container_id: str,
    controller: str,
    probe: _Probe[_Found],
    cgroup_root: Path,
    tried: list[str],
) -> _Found | None:
    hierarchies: list[tuple[Path, int]] = [(cgroup_root / controller, 1)]
    if (cgroup_root / "cgroup.controllers").is_file():
        hierarchies.append((cgroup_root, 2))
    hierarchies.append((cgroup_root / "unified", 2))
    hierarchies = [(root, version) for root, version in hierarchies if root.is_dir()]
    if not hierarchies:
        tried.append(f"search for {container_id}: no {controller} hierarchy under {cgroup_root}")
    for root, version in hierarchies:
        for directory in _walk_dirs(root, SEARCH_DEPTH):
            if container_id in directory.name:
                cgroup_path = "/" + directory.relative_to(root).as_posix()
                found = probe(directory, version, cgroup_path, "search", tried)
                if found:
                    return found
        tried.append(f"search of {root} for a directory named after {container_id} (none)")
    return None


def _walk_dirs(root: Path, depth: int) -> Iterator[Path]:
    """Directories below `root`, breadth first, not following symlinks."""
    level = [root]
    for _ in range(depth):
        below: list[Path] = []
        for directory in level:
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            below.append(Path(entry.path))
            except OSError:
                continue
        yield from below
        level = below


def _read_mounts(mounts_file: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    try:
        text = mounts_file.read_text()
    except OSError:
        return []
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            mount_point = fields[1].replace("\\040", " ")
            mounts.append((mount_point, fields[2], tuple(fields[3].split(","))))
    return mounts
