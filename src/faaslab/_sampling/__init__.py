r"""Memory sampling: cgroup discovery, the sampling processes, the Sampler actor.

- :func:`find_memory_files` — which kernel file holds a container's memory (pure);
  :func:`find_cpu_file` the same for its CPU time.
- :class:`CpuMeter`, :func:`open_cpu_meter` — a container's CPU time, read
  around each invocation.
- :class:`HostSampler` — a deployment's connection to the host sampler, the
  one sampling process of the host (started on first use, shared by every
  deployment, exits when idle); :func:`sampler_status`,
  :func:`stop_host_sampler`, :func:`serve_host_sampler` for the CLI.
- :class:`SamplingProcess` — a private worker process of one client, the same
  methods (both are :class:`SamplingClient`\ s, delivering :class:`SampleBatch`
  per subscription).
- :class:`PeakWatermark`, :func:`read_kernel_peak`, :func:`reset_peak` — the
  kernel's own peak.
- :class:`Sampler` — the Sampler actor: one container's memory, from the
  sampling process (or the Docker stats API when cgroup files are out of
  reach), folded into a running aggregate and the profile file; per-call
  memory for invocations.

On Docker Swarm the same worker runs on every node (``_node``, the node
sampler served over TCP); :func:`remote_sampling` (``_remote``) is the one
seam that connects a deployment to it.

Modules: ``_cgroup`` (discovery, pure), ``_grid`` (deadline grids, pure),
``_protocol`` (the frames, one protocol for every transport), ``_loop`` (the
timed reads both sampling processes share), ``_worker`` (the private
sampling process), ``_hostd`` (the host sampler), ``_listen`` (its
sockets and pid lock), ``_access`` (who may
sample what, pure), ``_verifier`` (the host sampler's access checker
process), ``_address`` (unix and TCP addresses), ``_launch`` (start on first
use), ``_pump`` (the client side both transports share), ``_client``
(SamplingProcess), ``_host_client`` (HostSampler), ``_subscription``
(per-file batches), ``_peak`` (kernel watermarks), ``_sampler`` (the
actor), ``_cpu`` (CPU time per call), ``_node`` (the node sampler of a swarm
node), ``_remote`` (the TCP seam to it).
"""

from ._access import token_digest
from ._address import ADDRESS_ENV, SamplerAddress, default_address, parse_address
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
from ._host_client import HostSampler, sampler_status, stop_host_sampler
from ._hostd import main as serve_host_sampler
from ._launch import IDLE_ENV
from ._peak import PeakWatermark, read_kernel_peak, reset_peak
from ._protocol import Status as SamplerStatus
from ._pump import SamplingClient
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
    "ADDRESS_ENV",
    "CONTAINER_PATH",
    "IDLE_ENV",
    "SAMPLER_PORT",
    "CallMemory",
    "CpuFile",
    "CpuMeter",
    "HostCgroups",
    "HostSampler",
    "KeyStatistics",
    "MemoryFiles",
    "PeakWatermark",
    "SampleBatch",
    "SampleSubscription",
    "Sampler",
    "SamplerAddress",
    "SamplerStatus",
    "SamplingClient",
    "SamplingEnd",
    "SamplingProcess",
    "SamplingStatistics",
    "cgroup_version",
    "container_pid",
    "default_address",
    "describe_host_cgroups",
    "find_cpu_file",
    "find_memory_files",
    "open_cpu_meter",
    "parse_address",
    "read_kernel_peak",
    "remote_sampling",
    "reset_peak",
    "sampler_status",
    "serve_host_sampler",
    "stop_host_sampler",
    "token_digest",
)
