"""A container's CPU time, read from its cgroup around each invocation.

The file (``cpuacct.usage`` on cgroup v1, ``cpu.stat`` on v2, found by
:func:`~._cgroup.find_cpu_file`) is opened once and read with ``pread`` at
offset 0, as the memory files are: about a microsecond per read, cheap
enough to take before and after every call. The difference is the CPU time
(user + system, every process in the container) the instance used during
the call, the runtime's HTTP handling included.
"""

from __future__ import annotations

import contextlib
import os

from .._errors import SamplingError
from ._cgroup import CpuFile, find_cpu_file, parse_cpu_usage_us

__all__ = ("CpuMeter", "open_cpu_meter")

#: Bytes read per pread: v2's cpu.stat is six short lines, v1's one number.
_READ_BYTES = 512


class CpuMeter:
    """One cgroup's CPU time counter, held open."""

    def __init__(self, file: CpuFile, fd: int) -> None:
        self.file = file
        self._fd: int | None = fd

    def read_us(self) -> int | None:
        """CPU time used so far in µs; None once the cgroup is gone or this is closed."""
        if self._fd is None:
            return None
        try:
            return parse_cpu_usage_us(self.file.version, os.pread(self._fd, _READ_BYTES, 0))
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def open_cpu_meter(pid: int, container_id: str) -> CpuMeter | None:
    """The meter of a container's cgroup, or None when its files are out of reach
    (remote engine, rootless, another host's container)."""
    try:
        file = find_cpu_file(pid, container_id=container_id)
        fd = os.open(file.path, os.O_RDONLY | os.O_CLOEXEC)
    except (SamplingError, OSError):
        return None
    return CpuMeter(file, fd)
