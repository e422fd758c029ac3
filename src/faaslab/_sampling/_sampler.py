"""The Sampler actor: one container's memory, from the kernel or the stats API.

For each ready instance the deployment starts :meth:`Sampler.run`. It
finds the container's cgroup memory file from its init pid, registers it with
the host sampler (the deployment's HostSampler), and folds every batch into a running
aggregate and the raw profile file as it arrives. When the cgroup files are
out of reach (remote engine, rootless, no /proc) it falls back to the Docker
stats API at its real resolution (about a second) and says so.

It also serves per-invocation memory (:class:`CallMemory`): the usage just
before a call, and the peak during it — from the kernel's watermark, reset
before the call, where the kernel allows it and the instance serves one call
at a time; otherwise the maximum of the samples taken in the call's window.
"""

from __future__ import annotations

import contextlib
import os
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import structlog

from .._aggregate import (
    MeasurementRecord,
    MemoryAggregate,
    ProfileWriter,
    Source,
)
from .._backend import Backend
from .._errors import EngineError, SamplingError
from ._cgroup import MemoryFiles, find_memory_files
from ._peak import PeakWatermark, reset_peak
from ._pump import SamplingClient
from ._remote import CONTAINER_PATH
from ._subscription import SampleSubscription

__all__ = ("CallMemory", "Sampler", "container_pid")

log = structlog.get_logger()

#: Samples kept per instance for call-window peaks (at 1 ms, a few seconds).
RECENT_SAMPLES = 8192
#: How long an invocation waits for the samples covering its end.
WINDOW_WAIT_S = 0.2
#: The stats API's own resolution: the daemon samples once a second.
STATS_INTERVAL_S = 1.0
#: At most one sampler.lagging event per instance per this many ns (a stall
#: makes every instance late at once: one line each per 10 s is enough).
LAGGING_EVERY_NS = 10_000_000_000

class CallMemory(msgspec.Struct, frozen=True):
    before_bytes: int | None
    peak_bytes: int | None
    method: str | None


class Sampler:
    """One container's memory measurement (the Sampler actor's state)."""

    def __init__(
        self,
        *,
        function: str,
        instance: str,
        index: int,
        container_id: str,
        interval_ms: float,
        profile: ProfileWriter,
        single_call: bool,
        on_lagging: Callable[[Sampler], None] | None = None,
    ) -> None:
        self.function = function
        self.instance = instance
        self.index = index
        self.container_id = container_id
        self.interval_ms = interval_ms
        self.aggregate = MemoryAggregate()
        self.source: Source = "cgroup"
        self.files: MemoryFiles | None = None
        self.kernel_peak: int | None = None
        self.kernel_peak_reset = False
        self.end_reason: str | None = None
        self.last_bytes: int | None = None
        #: The node that runs the container (multi-node backends), "" for this host.
        self.node = ""
        #: Why it is sampled by the stats API instead of cgroup files, if it is.
        self.fallback_reason: str | None = None
        self._profile = profile
        self._single_call = single_call
        self._recent_times: deque[int] = deque(maxlen=RECENT_SAMPLES)
        self._recent_values: deque[int] = deque(maxlen=RECENT_SAMPLES)
        self._usage_fd: int | None = None
        self._watermark: PeakWatermark | None = None
        self._arrived = anyio.Event()
        self._done = anyio.Event()
        self._stop_requested = False
        self._on_lagging = on_lagging
        self._lagging_reported_ns = 0
        self._log = log.bind(function=function, instance=instance)

    # -- the actor -----------------------------------------------------------

    async def run(
        self,
        engine: Backend,
        sampler: SamplingClient,
        pid: int,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Sample until the container ends or :meth:`finish` is called."""
        subscription: SampleSubscription | None = None
        try:
            try:
                self.files = await anyio.to_thread.run_sync(
                    lambda: find_memory_files(pid, container_id=self.container_id)
                )
                self._usage_fd = os.open(self.files.usage, os.O_RDONLY | os.O_CLOEXEC)
            except (SamplingError, OSError) as exc:
                self._log.warning("sampler.fallback", reason=str(exc), source="docker-stats")
                self.source = "docker-stats"
                task_status.started()
                await self._sample_stats(engine)
                return
            if self.files.peak is not None:
                with contextlib.suppress(OSError):
                    self._watermark = PeakWatermark.open(self.files.peak)
                    self.kernel_peak_reset = self._watermark.reset
            subscription = await sampler.register(
                self.container_id, self.files.usage, self.interval_ms
            )
            task_status.started()
            await self._consume(subscription)
        finally:
            # Closed here, not left to the garbage collector: a cancelled
            # run's frame can keep the stream alive until a collection that
            # finalizes it before the subscription (a ResourceWarning).
            if subscription is not None:
                subscription.close()
            self._close()
            self._done.set()

    async def run_on_node(
        self,
        engine: Backend,
        sampler: SamplingClient | None,
        *,
        node: str,
        local: bool,
        missing: str | None = None,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Sample a container on a node through that node's sampler (``_remote``).

        The node resolves the container's cgroup itself; without a sampler
        there (``missing`` says why) the stats API serves, which reaches only
        containers of the engine faaslab talks to (``local``).
        """
        self.node = node
        subscription: SampleSubscription | None = None
        try:
            if sampler is not None:
                try:
                    subscription = await sampler.register(
                        self.container_id, CONTAINER_PATH + self.container_id, self.interval_ms
                    )
                except SamplingError as exc:
                    missing = f"its node's sampler refused it: {exc}"
            if subscription is None:
                self.source = "docker-stats"
                self.fallback_reason = missing or "no sampler on its node"
                self._log.warning("sampler.fallback", reason=self.fallback_reason, node=node)
                task_status.started()
                if local:
                    await self._sample_stats(engine)
                else:
                    self.end_reason = "not sampled: its node's engine is out of reach"
                return
            task_status.started()
            await self._consume(subscription)
        finally:
            if subscription is not None:
                subscription.close()
            self._done.set()

    async def _consume(self, subscription: SampleSubscription) -> None:
        async for batch in subscription:
            self._take(batch.times, batch.values)
            self.aggregate.add(batch)
            if batch.late:
                self._report_lagging()
        self.end_reason = subscription.end.reason if subscription.end else "ended"

    async def _sample_stats(self, engine: Backend) -> None:
        """The fallback: the stats API, once a second, on absolute deadlines."""
        start = time.monotonic()
        k = 0
        while not self._stop_requested:
            try:
                value = await engine.memory_usage(self.container_id)
            except EngineError as exc:
                # The deployment rides the engine's loss out; this container is gone with it.
                self.end_reason = f"engine error: {exc}"
                return
            if value is None:
                self.end_reason = "container gone"
                return
            now = time.monotonic_ns()
            self._take(array("q", [now]), array("q", [value]))
            self.aggregate.update([value], times=[now])
            k += 1
            await anyio.sleep(max(0.0, start + k * STATS_INTERVAL_S - time.monotonic()))
        self.end_reason = "stopped"

    def _report_lagging(self) -> None:
        """Tell the deployment that deadlines were missed, at most every 10 s."""
        now = time.monotonic_ns()
        if self._on_lagging is not None and now - self._lagging_reported_ns >= LAGGING_EVERY_NS:
            self._lagging_reported_ns = now
            self._on_lagging(self)

    def _take(self, times: Any, values: Any) -> None:
        self._profile.append(self.container_id, times, values)
        self._recent_times.extend(times)
        self._recent_values.extend(values)
        if len(values):
            self.last_bytes = int(values[-1])
        self._arrived.set()
        self._arrived = anyio.Event()

    async def finish(self, sampler: SamplingClient | None) -> None:
        """Read the kernel's peak while the cgroup exists, then end sampling."""
        self._read_watermark()
        self._stop_requested = True
        if sampler is not None and self.source == "cgroup" and not self._done.is_set():
            with contextlib.suppress(SamplingError):
                await sampler.unregister(self.container_id)
        with anyio.move_on_after(5):
            await self._done.wait()

    def _read_watermark(self) -> None:
        if self._watermark is not None:
            value = self._watermark.read()
            if value is not None:
                self.kernel_peak = max(value, self.kernel_peak or 0)

    def _close(self) -> None:
        self._read_watermark()
        if self._watermark is not None:
            self._watermark.close()
            self._watermark = None
        if self._usage_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._usage_fd)
            self._usage_fd = None
        # The call-window samples serve calls on a live instance only; a
        # deployment that scales keeps one Sampler per instance it ever ran.
        self._recent_times.clear()
        self._recent_values.clear()

    # -- per invocation -------------------------------------------------------

    def before_call(self) -> tuple[int | None, bool, int]:
        """Usage now, whether the kernel watermark was reset for this call, and the time."""
        before = None
        if self._usage_fd is not None:
            with contextlib.suppress(OSError, ValueError):
                before = int(os.pread(self._usage_fd, 64, 0))
        reset = False
        if self._single_call and self.files is not None and self.files.version == 1:
            # v1's reset is global: fold the watermark so far into the
            # deployment-long peak before resetting it for this call.
            self._read_watermark()
            reset = self.files.peak is not None and reset_peak(self.files.peak)
        return before, reset, time.monotonic_ns()

    async def after_call(self, before: int | None, reset: bool, started_ns: int) -> CallMemory:
        ended_ns = time.monotonic_ns()
        if reset and self.files is not None and self.files.peak is not None:
            with contextlib.suppress(OSError, ValueError):
                with open(self.files.peak, "rb") as peak_file:  # noqa: ASYNC230 - a sysfs read
                    peak = int(peak_file.read(64))
                self.kernel_peak = max(peak, self.kernel_peak or 0)
                return CallMemory(before, peak, "kernel-watermark")
        if self.source != "cgroup":
            return CallMemory(before, None, None)
        # The window's samples may still be on their way from the sampling process.
        with anyio.move_on_after(WINDOW_WAIT_S):
            while not self._recent_times or self._recent_times[-1] < ended_ns:
                if self._done.is_set():
                    break
                await self._arrived.wait()
        window = self.window_peak(started_ns, ended_ns)
        if before is not None and (window is None or before > window):
            window = before
        return CallMemory(before, window, "samples")

    def window_peak(self, start_ns: int, end_ns: int) -> int | None:
        """The largest sample taken between start and end (monotonic ns)."""
        best: int | None = None
        for t, v in zip(reversed(self._recent_times), reversed(self._recent_values), strict=True):
            if t < start_ns:
                break
            if t <= end_ns and (best is None or v > best):
                best = v
        return best

    # -- records -------------------------------------------------------------

    def record(self) -> MeasurementRecord:
        return MeasurementRecord(
            function=self.function,
            instance=self.instance,
            index=self.index,
            container_id=self.container_id,
            source=self.source,
            interval_ms=self.interval_ms if self.source == "cgroup" else STATS_INTERVAL_S * 1000,
            layout=self.files.layout if self.files else None,
            usage_file=self.files.usage if self.files else None,
            snapshot=self.aggregate.snapshot(),
            kernel_peak_bytes=self.kernel_peak,
            kernel_peak_reset=self.kernel_peak_reset,
            last_bytes=self.last_bytes,
            end_reason=self.end_reason,
            node=self.node or None,
            fallback_reason=self.fallback_reason,
        )


async def container_pid(engine: Backend, container_id: str) -> int:
    data = await engine.inspect_container(container_id)
    pid = int(((data or {}).get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        raise EngineError(f"container {container_id[:12]} has no running process")
    return pid
