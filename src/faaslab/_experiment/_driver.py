"""Driving one workload on one deployment: closed, open or trace loop; warm, cold or as is.

Every call becomes one record, handed to ``sink`` as soon as it ends;
failures are records too (nothing a function does ends the run). A function
the deployment gave up (:class:`FunctionFailed`) stops its workload early:
every further call would fail at once.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import msgspec
import structlog

from .._deployment import Deployment
from .._errors import FaaslabError, FunctionFailed
from .._function import Instance, Invocation
from ._arrivals import poisson_arrivals
from ._records import InvocationRecord, error_of
from ._results import WorkloadRunInfo
from ._spec import Workload
from ._trace import Trace, trace_arrivals, trace_summary

__all__ = ("Progress", "ProgressCallback", "RunClock", "WorkloadDriver")

log = structlog.get_logger()


class RunClock:
    """Seconds since the run began, on the monotonic clock the memory samples use."""

    def __init__(self) -> None:
        self.epoch_ns = time.monotonic_ns()
        self.epoch_unix = time.time()

    def now(self) -> float:
        return (time.monotonic_ns() - self.epoch_ns) / 1e9


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """Where one workload run stands (handed to the progress callback after every call)."""

    deployment: str
    workload: str
    repetition: int
    calls: int
    errors: int
    dropped: int
    #: The workload's bounds: calls, and seconds.
    count: int | None
    duration_s: float | None
    elapsed_s: float


ProgressCallback = Callable[[Progress], None]


class WorkloadDriver:
    """One workload's run (one repetition) on one deployment."""

    def __init__(
        self,
        deployment: Deployment,
        name: str,
        workload: Workload,
        repetition: int,
        *,
        events: Sequence[Mapping[str, Any]],
        sink: Callable[[InvocationRecord], None],
        clock: RunClock,
        rng: random.Random,
        progress: ProgressCallback | None = None,
        trace: Trace | None = None,
        trace_seed: int = 0,
    ) -> None:
        if not events:
            raise ValueError("a workload needs at least one event")
        self.deployment = deployment
        self.name = name
        self.workload = workload
        self.repetition = repetition
        self.events = events
        self.calls = 0
        self.errors = 0
        self.dropped = 0
        self.stopped: str | None = None
        self.finished = False
        self._sink = sink
        self._clock = clock
        self._rng = rng
        self._progress = progress
        self._trace = trace
        self._trace_seed = trace_seed
        #: The calls this run makes at most (a trace's own total for a trace loop).
        self._count = workload.count
        if trace is not None:
            total = trace_summary(trace).calls
            self._count = total if workload.count is None else min(total, workload.count)
        self._in_flight = 0
        self._t_start = clock.now()
        self._log = log.bind(deployment=name, workload=workload.name, repetition=repetition)

    # -- the run ---------------------------------------------------------------

    async def run(self) -> None:
        workload = self.workload
        if workload.start == "warm":
            await self._warm_up()
        self._t_start = self._clock.now()
        self._log.info("experiment.workload_started", loop=workload.loop, start=workload.start)
        if workload.loop == "closed":
            await self._closed_loop()
        elif workload.loop == "trace":
            await self._trace_loop()
        else:
            await self._open_loop()
        self.finished = True
        self._log.info(
            "experiment.workload_done", calls=self.calls, errors=self.errors, dropped=self.dropped
        )

    def info(self) -> WorkloadRunInfo:
        """What run.json keeps of this run (also of one cut short)."""
        workload = self.workload
        return WorkloadRunInfo(
            deployment=self.name,
            workload=workload.name,
            function=workload.function,
            start=workload.start,
            loop=workload.loop,
            repetition=self.repetition,
            t_start=self._t_start,
            t_end=self._clock.now(),
            calls=self.calls,
            dropped=self.dropped,
            requested_rate=workload.rate,
            stopped=self.stopped or (None if self.finished else "interrupted"),
        )

    def _deadline(self) -> float | None:
        duration = self.workload.duration_s
        return None if duration is None else self._t_start + duration

    async def _closed_loop(self) -> None:
        count = self.workload.count
        deadline = self._deadline()
        sequence = itertools.count()

        async def client() -> None:
            while self.stopped is None:
                seq = next(sequence)
                if count is not None and seq >= count:
                    return
                now = self._clock.now()
                if deadline is not None and now >= deadline:
                    return
                await self._call(seq, now)

        async with anyio.create_task_group() as tg:
            for _ in range(self.workload.concurrency):
                tg.start_soon(client)

    async def _open_loop(self) -> None:
        workload = self.workload
        assert workload.rate is not None  # validated by Workload
        arrivals = poisson_arrivals(
            workload.rate, self._rng, count=workload.count, duration_s=workload.duration_s
        )
        async with anyio.create_task_group() as tg:
            for seq, offset in enumerate(arrivals):
                if self.stopped is not None:
                    break
                due = self._t_start + offset
                # Sleep to the absolute arrival time: a late wake-up delays
                # this call only, never the ones after it.
                delay = due - self._clock.now()
                if delay > 0:
                    await anyio.sleep(delay)
                if self._in_flight >= workload.max_in_flight:
                    self.dropped += 1
                    continue
                self._in_flight += 1
                tg.start_soon(self._counted_call, seq, due)

    async def _trace_loop(self) -> None:
        """Every traced invocation at its time (streamed: one trace minute held at once).

        Nothing is dropped: a call that finds no free instance waits in the
        pool's queue, as it would on the platform."""
        workload = self.workload
        if self._trace is None:
            raise ValueError(f"{workload.name}: a trace loop needs its loaded trace")
        arrivals = trace_arrivals(
            self._trace, seed=self._trace_seed, minute_s=workload.seconds_per_minute
        )
        count, duration = workload.count, workload.duration_s
        async with anyio.create_task_group() as tg:
            for seq, arrival in enumerate(arrivals):
                if self.stopped is not None or (count is not None and seq >= count):
                    break
                if duration is not None and arrival.at_s >= duration:
                    break
                due = self._t_start + arrival.at_s
                delay = due - self._clock.now()
                if delay > 0:
                    await anyio.sleep(delay)
                tg.start_soon(self._call, seq, due, arrival.trace_function)

    async def _counted_call(self, seq: int, scheduled: float) -> None:
        try:
            await self._call(seq, scheduled)
        finally:
            self._in_flight -= 1

    async def _warm_up(self) -> None:
        """One call per pool instance, not recorded: what follows finds them warm."""

        async def warm(instance: Instance) -> None:
            try:
                await self.deployment.invoke_on(
                    instance, self.events[0], timeout=self.workload.timeout_s, check=False
                )
            except FaaslabError as exc:
                self._log.warning(
                    "experiment.warm_up_failed", instance=instance.name, error=str(exc)
                )

        async with anyio.create_task_group() as tg:
            for instance in self.deployment.instances(self.workload.function):
                tg.start_soon(warm, instance)

    # -- one call --------------------------------------------------------------

    async def _call(self, seq: int, scheduled: float, trace_function: str | None = None) -> None:
        event = self.events[seq % len(self.events)]
        t_start = self._clock.now()
        if self.workload.start == "cold":
            record = await self._cold_call(seq, scheduled, t_start, event)
        else:
            record = await self._pool_call(seq, scheduled, t_start, event)
        if trace_function is not None:
            record = msgspec.structs.replace(record, trace_function=trace_function)
        self._sink(record)
        self.calls += 1
        self.errors += record.error is not None
        if self._progress is not None:
            self._progress(
                Progress(
                    deployment=self.name,
                    workload=self.workload.name,
                    repetition=self.repetition,
                    calls=self.calls,
                    errors=self.errors,
                    dropped=self.dropped,
                    count=self._count,
                    duration_s=self.workload.duration_s,
                    elapsed_s=self._clock.now() - self._t_start,
                )
            )

    async def _pool_call(
        self, seq: int, scheduled: float, t_start: float, event: Mapping[str, Any]
    ) -> InvocationRecord:
        try:
            invocation = await self.deployment.invoke(
                self.workload.function, event, timeout=self.workload.timeout_s, check=False
            )
        except FunctionFailed as exc:
            self._stop(f"function failed: {exc}")
            return self._record(seq, scheduled, t_start, error=exc)
        except FaaslabError as exc:
            return self._record(seq, scheduled, t_start, error=exc)
        return self._record(seq, scheduled, t_start, invocation)

    async def _cold_call(
        self, seq: int, scheduled: float, t_start: float, event: Mapping[str, Any]
    ) -> InvocationRecord:
        started: float | None = None
        try:
            async with self.deployment.open_cold_instance(self.workload.function) as instance:
                started = instance.start_s
                invocation = await self.deployment.invoke_on(
                    instance, event, timeout=self.workload.timeout_s, check=False
                )
                # The record ends at the answer; the container's removal is not the call's.
                return self._record(seq, scheduled, t_start, invocation, container_start_s=started)
        except FaaslabError as exc:
            return self._record(seq, scheduled, t_start, error=exc, container_start_s=started)

    def _stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
            self._log.warning("experiment.workload_stopped", reason=reason)

    def _record(
        self,
        seq: int,
        scheduled: float,
        t_start: float,
        invocation: Invocation | None = None,
        *,
        error: FaaslabError | None = None,
        container_start_s: float | None = None,
    ) -> InvocationRecord:
        common: dict[str, Any] = {
            "deployment": self.name,
            "function": self.workload.function,
            "workload": self.workload.name,
            "start": self.workload.start,
            "repetition": self.repetition,
            "seq": seq,
            "t_scheduled": scheduled,
            "t_start": t_start,
            "t_end": self._clock.now(),
            "container_start_s": container_start_s,
            "error": error_of(invocation, error),
        }
        if invocation is None:
            return InvocationRecord(**common)
        return InvocationRecord(
            **common,
            instance=invocation.instance,
            container_id=invocation.container_id,
            is_cold=invocation.is_cold,
            request_id=invocation.request_id,
            latency_s=invocation.latency_s,
            begin=invocation.begin or None,
            end=invocation.end or None,
            compute_time_us=invocation.compute_time_us,
            memory_before_bytes=invocation.memory_before_bytes,
            memory_peak_bytes=invocation.memory_peak_bytes,
            memory_method=invocation.memory_method,
            cpu_time_us=invocation.cpu_time_us,
            cold_start=invocation.cold_start,
        )
