"""Memory sampling: cgroup discovery, the sampling process, the Sampler actor.

- :func:`find_memory_files` — which kernel file holds a container's memory (pure);
  :func:`find_cpu_file` the same for its CPU time.
- :class:`CpuMeter`, :func:`open_cpu_meter` — a container's CPU time, read
  around each invocation.
- :class:`SamplingProcess` — the worker process reading those files on absolute
  deadlines, and the async pump delivering :class:`SampleBatch` per subscription.
- :class:`PeakWatermark`, :func:`read_kernel_peak`, :func:`reset_peak` — the
  kernel's own peak.
- :class:`Sampler` — the Sampler actor: one container's memory, from the
  sampling process (or the Docker stats API when cgroup files are out of
  reach), folded into a running aggregate and the profile file; per-call
  memory for invocations.

On Docker Swarm the same worker runs on every node (``_node``, the node
sampler served over TCP); :func:`remote_sampling` (``_remote``) is the one
seam that connects a deployment to it.

Modules: ``_cgroup`` (discovery, pure), ``_worker`` (the sampling process),
``_protocol`` (the frames between the two processes), ``_client`` (the pump
in the deployment's process), ``_subscription`` (per-file batches),
``_peak`` (kernel watermarks), ``_sampler`` (the actor), ``_cpu`` (CPU time per call).
"""

from ._cgroup import (
    CpuFile,
    HostCgroups,
    MemoryFiles,
    cgroup_version,
    describe_host_cgroups,
    find_cpu_file,
    find_memory_files,
)
from ._client import SamplingProcess
from ._cpu import CpuMeter, open_cpu_meter
from ._peak import PeakWatermark, read_kernel_peak, reset_peak
from ._remote import CONTAINER_PATH, SAMPLER_PORT, remote_sampling
from ._sampler import CallMemory, Sampler, container_pid
from ._subscription import (
    KeyStatistics,
    SampleBatch,
    SampleSubscription,
    SamplingEnd,
    SamplingStatistics,
)

__all__ = (
    "CONTAINER_PATH",
    "SAMPLER_PORT",
    "CallMemory",
    "CpuFile",
    "CpuMeter",
    "HostCgroups",
    "KeyStatistics",
    "MemoryFiles",
    "PeakWatermark",
    "SampleBatch",
    "SampleSubscription",
    "Sampler",
    "SamplingEnd",
    "SamplingProcess",
    "SamplingStatistics",
    "cgroup_version",
    "container_pid",
    "describe_host_cgroups",
    "find_cpu_file",
    "find_memory_files",
    "open_cpu_meter",
    "read_kernel_peak",
    "remote_sampling",
    "reset_peak",
)
