"""The Deployment actor: the one task group, supervision, routing, state, stop.

Obtained from ``open_deployment`` (``_open``), it starts every instance of
every function at once (each supervisor is started with ``task_group.start``,
so the first instance that cannot start fails the whole start with its own
error, and everything already created is removed). Each instance has a
supervisor task that replaces a container when it ends, as the crash policy
says (``_restart``: a death during a call is replaced at once and never
counts; crashes back off like CrashLoopBackOff; the function is refused with
:class:`FunctionFailed` only past a user-set ``max_restarts``). When the
engine stops answering, the supervisors ride it out together (``_outage``):
the deployment keeps its state, waits up to ``engine_timeout_s``, then
restores its objects and recreates the instances on their ports, or ends
itself, writing the statistics it has. ``stop`` tears everything down in
order under a shielded scope; concurrent calls share one stop.
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
from .._backend import Backend, deployment_filter
from .._errors import (
    EngineError,
    EngineUnreachable,
    FaaslabError,
    FunctionFailed,
    InstanceStartError,
    InvocationError,
    SamplingError,
    SpecError,
)
from .._function import (
    ExitInfo,
    Instance,
    InstanceContext,
    Invocation,
    LoadCheck,
    check_loads,
    default_verdicts,
    open_instance,
)
from .._messages import (
    DeploymentEnded,
    DeploymentEvent,
    DeploymentStopped,
    EngineBack,
    EngineLost,
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
from .._state import (
    Checkpoint,
    DeploymentState,
    SamplingRecord,
    Status,
    SupervisorRecord,
    write_state,
)
from .._storage import NoSQL, Storage
from .._util import first_error
from ._events import EventHub
from ._outage import EngineOutage
from ._pool import DeploymentStatistics, FunctionPool, FunctionStatistics, InstanceStatistics, Slot
from ._prepare import PreparedFunction, image_of
from ._restart import Cause, RestartPolicy, after_death, cause_of
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
    #: The NoSQL store (None when no function needs one and the spec asks for none).
    nosql: NoSQL | None = None
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
        #: The deployment's NoSQL store, the DynamoDB API (None when not started).
        self.nosql = parts.nosql
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
        self._labels = dict(parts.labels)
        self._tg: TaskGroup | None = None
        self._stop_lock = anyio.Lock()
        self._policy = RestartPolicy(
            initial_backoff_s=spec.restart_backoff_s,
            max_backoff_s=spec.restart_backoff_max_s,
            reset_after_s=2 * spec.restart_backoff_max_s,  # kubelet's 2 x the cap
            max_restarts=spec.max_restarts,
            window_s=spec.restart_window_s,
        )
        self._outage = EngineOutage(
            parts.engine,
            timeout_s=spec.engine_timeout_s,
            restore=self._restore_after_outage,
            give_up=self._end_after_outage,
            on_lost=self._engine_lost,
            on_back=self._engine_back,
        )
        #: Containers abandoned when the engine went away, removed once it is back.
        self._leftovers: list[str] = []
        #: Set when the deployment ended on its own (``ended_reason`` says why).
        self.ended = anyio.Event()
        self.ended_reason: str | None = None
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
        self.nosql_info: dict[str, Any] | None = parts.nosql.describe() if parts.nosql else None
        self._log = log.bind(deployment=deployment_id)
        self._events = EventHub(self._log)
        self._context = InstanceContext(
            deployment_id=deployment_id,
            network=network,
            image=spec.image or "",
            start_timeout_s=spec.start_timeout_s,
            stop_grace_s=spec.stop_grace_s,
            remove=spec.remove_containers,
            labels=dict(parts.labels),
        )
        # Each function's containers mount its own code and requirements.
        storage_env = storage.function_env() if storage is not None else {}

        def env_of(function: str) -> dict[str, str]:
            if parts.nosql is None:
                return storage_env
            benchmark = parts.benchmarks.get(function)
            # Each function sees the tables of its own benchmark only.
            nosql_env = parts.nosql.function_env(benchmark.name if benchmark else None)
            return {**storage_env, **nosql_env}

        self._contexts: dict[str, InstanceContext] = {}
        #: Functions whose language checks that they load, before any instance starts.
        self._load_checks: list[LoadCheck] = []
        for f in spec.functions:
            prepared = parts.prepared.get(f.name)
            context = self._contexts[f.name] = msgspec.structs.replace(
                self._context,
                env=env_of(f.name),
                code=prepared.code if prepared else None,
                binds=prepared.binds if prepared else [],
                image=prepared.image if prepared else image_of(spec, f),
            )
            if prepared is not None and prepared.load_check is not None:
                self._load_checks.append((f, context, prepared.load_check))

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
        if self.ended_reason is not None:
            raise FaaslabError(f"deployment {self.id} has ended: {self.ended_reason}")
        if self._stopping:
            raise FaaslabError(f"deployment {self.id} is stopping: no new invocations")
        if self._outage.since is not None:
            raise self._outage.unreachable()
        body = _encode(event)
        instance = await self._router.acquire(
            function, state.instances, self.spec.queue_timeout_s
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
            engine_unreachable_since=self._outage.since,
            engine_wait_until=self._outage.until,
            engine_outages=self._outage.outages,
            ended_reason=self.ended_reason,
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
        """Fill one position again and again; the crash policy decides when (``_restart``)."""
        state = self._functions[spec.name]
        name = f"{spec.name}-{slot.index}"
        generation = 0
        while True:
            if self._outage.since is not None:
                # Nothing is created while an outage is ridden out (restore
                # removes what was abandoned, and must not race new containers).
                slot.phase = "engine-unreachable"
                assert self._tg is not None
                await self._outage.ride_out(self._tg, self._outage.unreachable())
            slot.phase, slot.retry_at = "starting", None
            self._events.publish(
                InstanceStarting(at=time.time(), function=spec.name, instance=name)
            )
            outcome = await self._fill_once(spec, slot, name, generation, task_status)
            self._router.notify()
            if self._stopping:
                return
            generation += 1
            if isinstance(outcome, EngineUnreachable):
                # Not the function's doing: wait for the engine (bounded; past
                # the bound the deployment ends and this task is cancelled).
                slot.phase = "engine-unreachable"
                assert self._tg is not None
                await self._outage.ride_out(self._tg, outcome)
                continue
            info, cause = outcome
            slot.ends[cause] = slot.ends.get(cause, 0) + 1
            slot.last_exit = info.reason
            decision = after_death(slot.crashes, time.monotonic(), cause, self._policy)
            slot.crashes = decision.history
            if decision.give_up:
                crashes = len(decision.history.recent)
                state.failed = (
                    f"instance {name} crashed {crashes} time{'s' if crashes != 1 else ''} within "
                    f"{self.spec.restart_window_s:g} s (max_restarts={self.spec.max_restarts}); "
                    f"last: {info.reason}"
                )
                slot.phase = "failed"
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
            slot.restarts += 1
            slot.phase = "backoff" if decision.backoff_s > 0 else "starting"
            slot.retry_at = time.time() + decision.backoff_s
            self._events.publish(
                InstanceRestarted(
                    at=time.time(),
                    function=spec.name,
                    instance=name,
                    attempt=slot.restarts,
                    backoff_s=decision.backoff_s,
                    reason=info.reason,
                    retry_at=slot.retry_at,
                )
            )
            self._save()
            await anyio.sleep(decision.backoff_s)

    async def _fill_once(
        self,
        spec: FunctionSpec,
        slot: Slot,
        name: str,
        generation: int,
        task_status: TaskStatus[None],
    ) -> tuple[ExitInfo, Cause] | EngineUnreachable:
        """One container in this position, from creation to its end, and how it ended.

        At the first start (generation 0) failures raise: they fail the
        deployment's start. Later, the engine going away is returned, not raised.
        """
        started = time.monotonic()
        created: list[str] = []  # container ids, to remove if the engine goes away first
        try:
            async with open_instance(
                self.engine,
                spec,
                slot.index,
                self._contexts[spec.name],
                self._session,
                generation=generation,
                host_port=slot.host_port,
                on_created=created.append,
            ) as instance:
                try:
                    await self._measure(instance, slot.index)
                except (EngineError, SamplingError) as exc:
                    if isinstance(exc, EngineUnreachable):
                        raise
                    # It died right after it was ready: its end is what follows.
                    self._log.warning("sampler.not_started", instance=name, error=str(exc))
                slot.instance = instance
                slot.host_port = instance.host_port
                slot.phase = "ready"
                self._router.notify()
                self._events.publish(
                    InstanceReady(
                        at=time.time(),
                        function=spec.name,
                        instance=name,
                        container_id=instance.container_id,
                        url=instance.sebs_url,
                        start_s=round(time.monotonic() - started, 4),
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
                    during_call = instance.died_in_call or instance.in_flight > 0
                cause = cause_of(
                    retired=retired is not None,
                    during_invocation=during_call,
                    exit_code=info.exit_code,
                    oom_killed=info.oom_killed,
                )
                self._events.publish(
                    InstanceExited(
                        at=time.time(),
                        function=spec.name,
                        instance=name,
                        container_id=instance.container_id,
                        exit_code=info.exit_code,
                        oom_killed=info.oom_killed,
                        expected=retired is not None or self._stopping,
                        reason=retired or info.reason,
                        during_invocation=during_call,
                        cause="" if self._stopping else cause,
                    )
                )
                return info, cause
        except InstanceStartError as exc:
            if generation == 0:
                raise
            return ExitInfo(-1, False, f"restart failed: {exc}"), "crash"
        except EngineError as exc:
            if generation == 0 and slot.host_port is None:
                raise  # still starting: the start fails with the engine's error
            if isinstance(exc, EngineUnreachable) or not await self._outage.answers():
                self._leftovers.extend(created)
                return exc if isinstance(exc, EngineUnreachable) else self._outage.lost(exc)
            # An engine that answers but refuses (a daemon shutting down does).
            return ExitInfo(-1, False, f"the engine refused: {exc}"), "engine"

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
        await check_loads(self.engine, self._load_checks, verdicts=default_verdicts())
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

    async def stop(
        self, stats_path: str | Path | None = None, *, ended_reason: str | None = None
    ) -> MemoryReport | None:
        """Stop everything; write memory statistics to ``stats_path`` when given.

        Kernel peaks are read while the containers still exist, sampling is
        drained, then the instances are stopped (concurrently) and removed.
        Returns the typed memory report (None when sampling was off). Calls
        made while a stop runs wait for it; later calls return its report and
        write nothing. ``ended_reason`` marks a deployment that ends on its own
        (its report is incomplete, its state "ended").
        """
        # Shielded before the lock too: acquiring a lock is a cancellation
        # point, and a cancelled run (Ctrl-C) must still stop in order.
        with anyio.CancelScope(shield=True):
            async with self._stop_lock:
                if self._stopped is None:
                    await self._stop(stats_path, ended_reason)
        return self._stopped.report if self._stopped is not None else None

    async def _stop(self, stats_path: str | Path | None, ended_reason: str | None) -> None:
        self._stopping = True
        if ended_reason is None and self._outage.since is not None:
            # What the engine holds cannot be removed now: the next `stop` does it.
            ended_reason = f"stopped while {self._outage.describe()}"
        self.ended_reason = ended_reason
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
                    incomplete_reason=ended_reason,
                    sampler_restarts=self._sampler.restarts if self._sampler else 0,
                )
            )
        elif self._sampler is not None:
            report = build_report(
                self.id,
                [m.record() for m in self._measurements],
                sampler_priority=self._sampler.priority,
                incomplete_reason=ended_reason,
                sampler_restarts=self._sampler.restarts,
            )
        self._stopped = _StopResult(report, time.time(), str(path) if path else None)
        self._save()
        if ended_reason is not None:
            self._events.publish(
                DeploymentEnded(at=time.time(), deployment=self.id, reason=ended_reason)
            )
        self._events.publish(DeploymentStopped(at=time.time(), deployment=self.id))
        self._events.close()

    # -- the engine going away -------------------------------------------------

    def _engine_lost(self, since: float, reason: str) -> None:
        until = since + self.spec.engine_timeout_s
        self._events.publish(
            EngineLost(at=since, endpoint=self.engine.endpoint, reason=reason, until=until)
        )
        self._router.notify()
        self._save()

    def _engine_back(self, outage_s: float) -> None:
        self._events.publish(
            EngineBack(at=time.time(), endpoint=self.engine.endpoint, outage_s=round(outage_s, 3))
        )
        self._save()

    async def _restore_after_outage(self) -> None:
        """The engine answers again: remove what its restart left, bring back the shared parts.

        Runs while every supervisor waits (none creates anything meanwhile);
        they recreate their instances once this returns.
        """
        for container_id in list(self._leftovers):
            await self.engine.remove_container(container_id)
            self._leftovers.remove(container_id)
        networks = await self.engine.networks_labeled(deployment_filter(self.id))
        if not any(n.get("Name") == self.network for n in networks):
            self._log.warning("deployment.network_recreated", network=self.network)
            await self.engine.create_network(self.network, self._labels)
        if self.storage is not None:
            await self.storage.recover()
            self.storage_info = self.storage.describe()
        if self.nosql is not None:
            await self.nosql.recover()
            self.nosql_info = self.nosql.describe()

    async def _end_after_outage(self, reason: str) -> None:
        """Past the bound: end the deployment, writing the statistics it has (incomplete)."""
        stats = self._state_path.with_name("memory_stats.json") if self._state_path else None
        await self.stop(stats, ended_reason=reason)
        self.ended.set()

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
                pid=self._sampler.pid,
                address=str(self._sampler.address),
                restarts=self._sampler.restarts,
            )
        stopped = self._stopped
        status: Status = "stopping" if self._stopping else "running"
        if stopped:
            status = "ended" if self.ended_reason else "stopped"
        return DeploymentState(
            id=self.id,
            status=status,
            created_at=self._created_at,
            spec=msgspec.to_builtins(self.spec),
            functions=records,
            inputs=self.inputs,
            input_functions=self.input_functions,
            storage=self.storage_info,
            nosql=self.nosql_info,
            supervisor=self._supervisor,
            sampling=sampling,
            checkpoint=Checkpoint(
                at=time.time(),
                monotonic_ns=time.monotonic_ns(),
                interval_s=CHECKPOINT_INTERVAL_S,
                measurements=[msgspec.to_builtins(m.record()) for m in self._measurements],
            ),
            stopped_at=stopped.at if stopped else None,
            stats_path=stopped.stats_path if stopped else None,
            ended_reason=self.ended_reason if stopped else None,
            engine_unreachable_since=self._outage.since,
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
