"""Memory sampling: cgroup discovery, the sampling process and its client.

- :func:`find_memory_files` — which kernel file holds a container's memory (pure).
- :class:`SamplingProcess` — the worker process reading those files on absolute
  deadlines, and the async pump delivering :class:`SampleBatch` per subscription.
- :class:`PeakWatermark`, :func:`read_kernel_peak`, :func:`reset_peak` — the
  kernel's own peak.
- :mod:`._protocol` — the frames between the two processes.
"""

from ._cgroup import (
    HostCgroups,
    MemoryFiles,
    cgroup_version,
    describe_host_cgroups,
    find_memory_files,
)
from ._client import SamplingProcess
from ._peak import PeakWatermark, read_kernel_peak, reset_peak
from ._subscription import (
    KeyStatistics,
    SampleBatch,
    SampleSubscription,
    SamplingEnd,
    SamplingStatistics,
)

__all__ = (
    "HostCgroups",
    "KeyStatistics",
    "MemoryFiles",
    "PeakWatermark",
    "SampleBatch",
    "SampleSubscription",
    "SamplingEnd",
    "SamplingProcess",
    "SamplingStatistics",
    "cgroup_version",
    "describe_host_cgroups",
    "find_memory_files",
    "read_kernel_peak",
    "reset_peak",
)
