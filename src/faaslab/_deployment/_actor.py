"""The Deployment actor: the one task group, supervision, routing, state, stop.

Obtained from ``open_deployment`` (``_open``), it starts every instance of
every function at once (each supervisor is started with ``task_group.start``,
so the first instance that cannot start fails the whole start with its own
error, and everything already created is removed). Each instance has a
supervisor task that replaces a container that dies (exponential backoff, at
most ``max_restarts`` in ``restart_window_s``; beyond that the function is
failed and invocations get :class:`FunctionFailed`). ``stop`` tears
everything down in order under a shielded scope.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
import structlog
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream

from .._aggregate import MeasurementRecord, MemoryReport, ProfileWriter, build_report, write_reports
from .._backend import Backend
from .._errors import FaaslabError, FunctionFailed, InstanceStartError, InvocationError, SpecError
from .._function import ExitInfo, Instance, InstanceContext, Invocation, open_instance
from .._messages import (
    DeploymentEvent,
    DeploymentStopped,
    FunctionFailedEvent,
    InstanceExited,
    InstanceReady,
    InstanceRestarted,
    InstanceStarting,
    SamplerLagging,
)
from .._sampling import HostSampler, Sampler, SamplingClient, container_pid
from .._sebs import SebsBenchmark
from .._spec import DeploymentSpec, FunctionSpec
from .._state import Checkpoint, DeploymentState, SamplingRecord, SupervisorRecord, write_state
from .._storage import Storage
from .._util import first_error
from ._events import EventHub
from ._pool import DeploymentStatistics, FunctionPool, FunctionStatistics, InstanceStatistics, Slot
from ._prepare import PreparedFunction
from ._restart import after_death
from ._routing import Router

__all__ = (
    "Deployment",
    "DeploymentStatistics",
    "FunctionStatistics",
    "InstanceStatistics",
)

log = structlog.get_logger()

CHECKPOINT_INTERVAL_S = 1.0
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, kw_only=True)
class DeploymentParts:
    """Everything a :class:`Deployment` is built from, assembled by ``open_deployment``."""

    spec: DeploymentSpec
    engine: Backend
    deployment_id: str
    session: aiohttp.ClientSession
    #: The deployment's own network (its name).
    network: str
    #: Labels every object of the deployment carries.
    labels: Mapping[str, str]
    #: Where the profile file and packages go (beside the state file, when there is one).
    workdir: Path
    state_path: Path | None = None
    supervisor: SupervisorRecord | None = None
    #: What each function's containers mount (code, installed requirements).
    prepared: Mapping[str, PreparedFunction] = field(default_factory=dict)
    storage: Storage | None = None
    #: SeBS benchmarks among the functions, by function name.
    benchmarks: Mapping[str, SebsBenchmark] = field(default_factory=dict)
    #: SeBS inputs generated at start, and the function each belongs to.
    inputs: Sequence[Any] = ()
    input_functions: Sequence[str] = ()
    #: Presented to the host sampler; its SHA-256 is on the containers' labels.
    sampler_token: str = ""


@asynccontextmanager
async def run_deployment(parts: DeploymentParts) -> AsyncIterator[Deployment]:
    """Build the Deployment actor, start every instance in its task group, yield it.

    On the way out, whatever the reason, it stops in order (the shielded
    :meth:`Deployment.stop`) and every event subscriber is closed.
    """
    deployment = Deployment(parts)
    try:
        async with anyio.create_task_group() as tg:
            try:
                await deployment._start_all(tg)
            except BaseExceptionGroup as group:
                raise first_error(group) from None
            deployment._save()
            try:
                yield deployment
            finally:
                await deployment.stop()
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    finally:
        deployment._events.close()


class Deployment:
    """A running deployment. Obtain one with :func:`open_deployment`."""

    def __init__(self, parts: DeploymentParts) -> None:
        spec, storage, network = parts.spec, parts.storage, parts.network
        deployment_id = parts.deployment_id
        self.spec = spec
        #: The deployment's object storage (None with storage kind "none").
        self.storage = storage
        #: SeBS benchmarks among the functions, by function name.
        self.benchmarks: Mapping[str, SebsBenchmark] = parts.benchmarks
        self.engine = parts.engine
        self.id = deployment_id
        self.network = network
        self._session = parts.session
        self._functions = {f.name: FunctionPool(f) for f in spec.functions}
        self._router = Router()
        self._started = time.monotonic()
        self._created_at = time.time()
        self._stopping = False
        self._stopped: _StopResult | None = None
        self._state_path = parts.state_path
        self._supervisor = parts.supervisor
        self._tg: TaskGroup | None = None
        # Memory sampling: the host's one sampling process, one measurement per container.
        self.profile_path = parts.workdir / "memory.profile"
        self._profile = ProfileWriter(self.profile_path) if spec.sampling else None
        self._sampler: HostSampler | None = None
        if spec.sampling:
            self._sampler = HostSampler(
                deployment_id, token=parts.sampler_token, engine=parts.engine.endpoint
            )
        self._sampler_scope = anyio.CancelScope()
        self._sampler_done = anyio.Event()
        self._measurements: list[Sampler] = []
        self._extra_instances = 0
        #: SeBS inputs generated at start (the deployment file's ``inputs``).
        self.inputs: list[Any] = list(parts.inputs)
        #: Which function each of ``inputs`` belongs to.
        self.input_functions: list[str] = list(parts.input_functions)
        self.storage_info: dict[str, Any] | None = storage.describe() if storage else None
        self._log = log.bind(deployment=deployment_id)
        self._events = EventHub(self._log)
        self._context = InstanceContext(
            deployment_id=deployment_id,
            network=network,
            image=spec.image,
            start_timeout_s=spec.start_timeout_s,
            stop_grace_s=spec.stop_grace_s,
            remove=spec.remove_containers,
            labels=dict(parts.labels),
        )
        # Each function's containers mount its own code and requirements.
        storage_env = storage.function_env() if storage is not None else {}
        self._contexts = {
            f.name: msgspec.structs.replace(
                self._context,
                env=storage_env,
                code=parts.prepared[f.name].code if f.name in parts.prepared else None,
                binds=parts.prepared[f.name].binds if f.name in parts.prepared else [],
            )
            for f in spec.functions
        }

    # -- public --------------------------------------------------------------

    async def invoke(
        self,
        function: str,
        event: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> Invocation:
        """Invoke ``function`` with ``event`` on a free instance and return the record.

        With ``check`` (the default) a handler error raises
        :class:`InvocationError`; without, it is returned in ``Invocation.error``.
        """
        state = self._state_of(function)
        if event is None:
            event = {}
        if not isinstance(event, Mapping):
            raise SpecError(f"event: must be a JSON object (a mapping), not {type(event).__name__}")
        if state.failed is not None:
            raise FunctionFailed(f"{function} has failed: {state.failed}")
        if self._stopping:
            raise FaaslabError(f"deployment {self.id} is stopping: no new invocations")
        body = _encode(event)
        instance = await self._router.acquire(
            function, state.instances(), self.spec.queue_timeout_s
        )
        try:
            return await self._call(state, instance, body, timeout, check)
        finally:
            self._router.notify()

    async def _call(
        self,
        state: FunctionPool,
        instance: Instance,
        body: bytes,
        timeout: float | None,
        check: bool,
    ) -> Invocation:
        state.invocations += 1
        try:
            memory = instance.memory
            if memory is None:
                result = await instance.invoke(body, timeout or state.spec.timeout_s)
            else:
                before, reset, started_ns = memory.before_call()
                result = await instance.invoke(body, timeout or state.spec.timeout_s)
                call = await memory.after_call(before, reset, started_ns)
                result = msgspec.structs.replace(
                    result,
                    memory_before_bytes=call.before_bytes,
                    memory_peak_bytes=call.peak_bytes,
                    memory_method=call.method,
                )
        except FaaslabError:
            state.errors += 1
            raise
        if result.error is not None:
            state.errors += 1
            if check:
                raise InvocationError(
                    instance.spec.name,
                    result.error.type,
                    result.error.message,
                    result.error.traceback,
                )
        return result

    @asynccontextmanager
    async def open_cold_instance(self, function: str) -> AsyncIterator[Instance]:
        """A fresh instance of ``function`` outside the pool, for cold-start experiments.

        It is created, started and sampled like any other; ``instance.start_s``
        is its create-to-ready time. Invoke it with :meth:`invoke_on`; it is
        stopped and removed when the block exits.
        """
        state = self._state_of(function)
        self._extra_instances += 1
        index = state.spec.instances + self._extra_instances
        async with open_instance(
            self.engine,
            state.spec,
            index,
            self._contexts[function],
            self._session,
            name=f"{function}-cold{self._extra_instances}",
        ) as instance:
            await self._measure(instance, index)
            try:
                yield instance
            finally:
                if instance.memory is not None:
                    with anyio.CancelScope(shield=True):
                        await instance.memory.finish(self._sampler)

    async def invoke_on(
        self,
        instance: Instance,
        event: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> Invocation:
        """Invoke one given instance (from :meth:`open_cold_instance` or :meth:`instances`)."""
        state = self._state_of(instance.spec.name)
        if not isinstance(event, Mapping | None):
            raise SpecError(f"event: must be a JSON object (a mapping), not {type(event).__name__}")
        return await self._call(state, instance, _encode(event or {}), timeout, check)

    def _state_of(self, function: str) -> FunctionPool:
        state = self._functions.get(function)
        if state is None:
            known = ", ".join(self._functions)
            raise SpecError(f"no function named {function!r} (this deployment has: {known})")
        return state

    def instances(self, function: str | None = None) -> list[Instance]:
        """The instances serving now (of one function, or all)."""
        states = [self._functions[function]] if function else self._functions.values()
        return [s.instance for st in states for s in st.slots if s.instance is not None]

    def statistics(self) -> DeploymentStatistics:
        """An immutable snapshot of the deployment now."""
        return DeploymentStatistics(
            deployment_id=self.id,
            uptime_s=time.monotonic() - self._started,
            functions=[pool.statistics() for pool in self._functions.values()],
            events_dropped=self._events.dropped,
        )

    def events(self) -> MemoryObjectReceiveStream[DeploymentEvent]:
        """A stream of lifecycle events from now on (iterate it with ``async for``)."""
        return self._events.subscribe()

    # -- supervision ---------------------------------------------------------

    async def _supervise(
        self,
        spec: FunctionSpec,
        slot: Slot,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Keep one instance position filled until the deployment stops."""
        try:
            with slot.scope:
                await self._keep_filled(spec, slot, task_status)
        finally:
            slot.done.set()

    async def _keep_filled(
        self, spec: FunctionSpec, slot: Slot, task_status: TaskStatus[None]
    ) -> None:
        state = self._functions[spec.name]
        name = f"{spec.name}-{slot.index}"
        generation = 0
        while True:
            self._events.publish(
                InstanceStarting(at=time.time(), function=spec.name, instance=name)
            )
            created = time.monotonic()
            info: ExitInfo
            retired: str | None = None
            try:
                async with open_instance(
                    self.engine,
                    spec,
                    slot.index,
                    self._contexts[spec.name],
                    self._session,
                    generation=generation,
                ) as instance:
                    await self._measure(instance, slot.index)
                    slot.instance = instance
                    self._router.notify()
                    self._events.publish(
                        InstanceReady(
                            at=time.time(),
                            function=spec.name,
                            instance=name,
                            container_id=instance.container_id,
                            url=instance.sebs_url,
                            start_s=round(time.monotonic() - created, 4),
                        )
                    )
                    self._save()
                    if generation == 0:
                        task_status.started()
                    try:
                        info = await instance.wait_exit()
                    finally:
                        slot.instance = None
                        retired = instance.retired_because
                    self._events.publish(
                        InstanceExited(
                            at=time.time(),
                            function=spec.name,
                            instance=name,
                            container_id=instance.container_id,
                            exit_code=info.exit_code,
                            oom_killed=info.oom_killed,
                            expected=retired is not None,
                            reason=retired or info.reason,
                        )
                    )
            except InstanceStartError as exc:
                if generation == 0:
                    raise
                info = ExitInfo(-1, False, f"restart failed: {exc}")
            self._router.notify()
            if self._stopping:
                return
            if retired is None:
                decision = after_death(
                    slot.restart_times,
                    time.monotonic(),
                    max_restarts=self.spec.max_restarts,
                    window_s=self.spec.restart_window_s,
                )
                slot.restart_times = decision.recent
                if decision.give_up:
                    state.failed = (
                        f"instance {name} died {len(decision.recent)} times within "
                        f"{self.spec.restart_window_s:g} s; last: {info.reason}"
                    )
                    self._events.publish(
                        FunctionFailedEvent(
                            at=time.time(),
                            function=spec.name,
                            restarts=slot.restarts,
                            reason=state.failed,
                        )
                    )
                    self._router.notify()
                    self._save()
                    return
                backoff = decision.backoff_s
            else:
                backoff = 0.0
            slot.restarts += 1
            generation += 1
            self._events.publish(
                InstanceRestarted(
                    at=time.time(),
                    function=spec.name,
                    instance=name,
                    attempt=slot.restarts,
                    backoff_s=backoff,
                )
            )
            await anyio.sleep(backoff)

    async def _measure(self, instance: Instance, index: int) -> None:
        """Start the Sampler actor of a fresh container (when sampling is on)."""
        if self._sampler is None or self._profile is None or self._tg is None:
            return
        measurement = Sampler(
            function=instance.spec.name,
            instance=instance.name,
            index=index,
            container_id=instance.container_id,
            interval_ms=self.spec.measure_interval_ms,
            profile=self._profile,
            single_call=instance.spec.concurrency == 1,
            on_lagging=self._lagging,
        )
        pid = await container_pid(self.engine, instance.container_id)
        await self._tg.start(measurement.run, self.engine, self._sampler, pid)
        self._measurements.append(measurement)
        instance.attach_memory(measurement)

    def _lagging(self, measurement: Sampler) -> None:
        snapshot = measurement.aggregate
        self._events.publish(
            SamplerLagging(
                at=time.time(),
                instance=measurement.instance,
                late=snapshot.late,
                samples=snapshot.count,
            )
        )

    async def _run_sampler(self, *, task_status: TaskStatus[SamplingClient]) -> None:
        assert self._sampler is not None
        try:
            with self._sampler_scope:
                await self._sampler.run(task_status=task_status)
        finally:
            self._sampler_done.set()

    async def _checkpoints(self) -> None:
        """Save the state (aggregates included) about every second."""
        while True:
            await anyio.sleep(CHECKPOINT_INTERVAL_S)
            self._save()

    async def _start_all(self, tg: TaskGroup) -> None:
        """Start every instance at once; the first failure cancels the rest."""
        self._tg = tg
        if self._sampler is not None:
            await tg.start(self._run_sampler)
        async with anyio.create_task_group() as starters:
            for state in self._functions.values():
                for slot in state.slots:
                    starters.start_soon(self._start_one, tg, state.spec, slot)
        if self._state_path is not None:
            tg.start_soon(self._checkpoints)

    async def _start_one(self, tg: TaskGroup, spec: FunctionSpec, slot: Slot) -> None:
        await tg.start(self._supervise, spec, slot)

    # -- stopping ------------------------------------------------------------

    async def stop(self, stats_path: str | Path | None = None) -> MemoryReport | None:
        """Stop everything; write memory statistics to ``stats_path`` when given.

        Kernel peaks are read while the containers still exist, sampling is
        drained, then the instances are stopped (concurrently) and removed.
        Returns the typed memory report (None when sampling was off). A
        second call returns the first call's report and writes nothing.
        """
        if self._stopped is not None:
            return self._stopped.report
        with anyio.CancelScope(shield=True):
            self._stopping = True
            async with anyio.create_task_group() as tg:
                for measurement in self._measurements:
                    tg.start_soon(measurement.finish, self._sampler)
            for state in self._functions.values():
                for slot in state.slots:
                    slot.scope.cancel()
            with anyio.move_on_after(self.spec.stop_grace_s + 60):
                for state in self._functions.values():
                    for slot in state.slots:
                        await slot.done.wait()
            if self._sampler is not None:
                self._sampler_scope.cancel()
                with anyio.move_on_after(10):
                    await self._sampler_done.wait()
            if self._profile is not None:
                self._profile.close()
            report = None
            path = Path(stats_path) if stats_path is not None else None
            if path is not None and self._sampler is not None:
                report = await anyio.to_thread.run_sync(
                    lambda: write_reports(
                        path,
                        self.profile_path,
                        self.id,
                        [m.record() for m in self._measurements],
                        sampler_priority=self._sampler.priority if self._sampler else None,
                        sampler_restarts=self._sampler.restarts if self._sampler else 0,
                    )
                )
            elif self._sampler is not None:
                report = build_report(
                    self.id,
                    [m.record() for m in self._measurements],
                    sampler_priority=self._sampler.priority,
                    sampler_restarts=self._sampler.restarts,
                )
            self._stopped = _StopResult(report, time.time(), str(path) if path else None)
            self._save()
            self._events.publish(DeploymentStopped(at=time.time(), deployment=self.id))
            self._events.close()
        return report

    # -- state ---------------------------------------------------------------

    def memory_records(self) -> list[MeasurementRecord]:
        return [m.record() for m in self._measurements]

    def state(self) -> DeploymentState:
        """The deployment as the state file holds it."""
        records = [
            record
            for pool in self._functions.values()
            for record in pool.records(stopping=self._stopping)
        ]
        sampling = None
        if self._sampler is not None:
            sampling = SamplingRecord(
                interval_ms=self.spec.measure_interval_ms,
                profile=str(self.profile_path),
                priority=self._sampler.priority or "",
            )
        stopped = self._stopped
        return DeploymentState(
            id=self.id,
            status="stopped" if stopped else ("stopping" if self._stopping else "running"),
            created_at=self._created_at,
            spec=msgspec.to_builtins(self.spec),
            functions=records,
            inputs=self.inputs,
            input_functions=self.input_functions,
            storage=self.storage_info,
            supervisor=self._supervisor,
            sampling=sampling,
            checkpoint=Checkpoint(
                at=time.time(),
                measurements=[msgspec.to_builtins(m.record()) for m in self._measurements],
            ),
            stopped_at=stopped.at if stopped else None,
            stats_path=stopped.stats_path if stopped else None,
        )

    def _save(self) -> None:
        if self._state_path is not None:
            try:
                write_state(self._state_path, self.state())
            except OSError as exc:
                self._log.error("state.write_failed", path=str(self._state_path), error=str(exc))


class _StopResult(msgspec.Struct, frozen=True):
    report: MemoryReport | None
    at: float
    stats_path: str | None
