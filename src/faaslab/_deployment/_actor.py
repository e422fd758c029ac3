"""The Deployment actor: the one task group, supervision, routing, state, stop.

Obtained from ``open_deployment`` (``_open``), it starts the instances every
function's pool asks for at deploy (each supervisor is started with
``task_group.start``, so the first instance that cannot start fails the whole
start with its own error, and everything already created is removed). Each
instance position has a supervisor task that replaces a container when it
ends, as the crash policy says (``_restart``: a death during a call is
replaced at once and never counts; crashes back off like CrashLoopBackOff;
the function is refused with :class:`FunctionFailed` only past a user-set
``max_restarts``). Under a scaling policy the pool (``_pool``) asks for
positions on demand and stops idle ones; each gets a supervisor and a
Sampler like the first. When the engine stops answering, the supervisors
ride it out together (``_outage``): the deployment keeps its state, waits up
to ``engine_timeout_s``, then restores its objects and recreates the
instances on their ports, or ends itself, writing the statistics it has.
``stop`` tears everything down in order under a shielded scope; concurrent
calls share one stop.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
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
    InstanceStartFailed,
    InstanceStarting,
    InstanceStopping,
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
from ._accounting import PoolStatistics
from ._events import EventHub
from ._outage import EngineOutage
from ._pool import DeploymentStatistics, FunctionPool, FunctionStatistics
from ._prepare import PreparedFunction, image_of
from ._restart import Cause, RestartPolicy, after_death, cause_of
from ._slot import InstanceStatistics, Slot
from ._swarm import NodeSamplers, pinned_node

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
    #: On Swarm: the samplers on the nodes (instead of one local sampling process).
    node_samplers: NodeSamplers | None = None
    #: On Swarm: per function, the nodes its instances are spread over.
    spread: Mapping[str, list[str]] = field(default_factory=dict)
    #: The engine's own node (multi-node backends): its containers' stats are in reach.
    engine_node: str = ""
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
        self._policy = RestartPolicy(
            initial_backoff_s=spec.restart_backoff_s,
            max_backoff_s=spec.restart_backoff_max_s,
            reset_after_s=2 * spec.restart_backoff_max_s,  # kubelet's 2 x the cap
            max_restarts=spec.max_restarts,
            window_s=spec.restart_window_s,
        )
        self._functions = {
            f.name: FunctionPool(
                f,
                clock=time.monotonic,
                start_slot=partial(self._start_slot, f),
                stop_slot=self._stop_slot,
                queue_timeout_s=spec.queue_timeout_s,
                start_timeout_s=spec.start_timeout_s,
                restart_policy=self._policy,
            )
            for f in spec.functions
        }
        #: Each pool's counters when the stop began (None while running).
        self._pools_at_stop: dict[str, PoolStatistics] | None = None
        self._started = time.monotonic()
        self._created_at = time.time()
        self._stopping = False
        self._stopped: _StopResult | None = None
        self._state_path = parts.state_path
        self._supervisor = parts.supervisor
        self._labels = dict(parts.labels)
        self._tg: TaskGroup | None = None
        self._stop_lock = anyio.Lock()
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
        self._nodes = parts.node_samplers if spec.sampling else None
        self._spread = parts.spread
        self._engine_node = parts.engine_node
        # The host sampler, unless the nodes sample (Swarm).
        self._sampler: HostSampler | None = None
        if spec.sampling and self._nodes is None:
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
        call = await state.acquire()
        try:
            instance = await state.ready_instance(call)
            return await self._call(state, instance, body, timeout, check, cold_start=call.cold)
        finally:
            state.finish(call)

    async def _call(
        self,
        state: FunctionPool,
        instance: Instance,
        body: bytes,
        timeout: float | None,
        check: bool,
        *,
        cold_start: bool,
    ) -> Invocation:
        state.invocations += 1
        try:
            memory = instance.memory
            if memory is None:
                result = await instance.invoke(body, timeout or state.spec.timeout_s)
                result = msgspec.structs.replace(result, cold_start=cold_start)
            else:
                before, reset, started_ns = memory.before_call()
                result = await instance.invoke(body, timeout or state.spec.timeout_s)
                call = await memory.after_call(before, reset, started_ns)
                result = msgspec.structs.replace(
                    result,
                    cold_start=cold_start,
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
                        await instance.memory.finish(self._sampling_of(instance.memory))

    async def invoke_on(
        self,
        instance: Instance,
        event: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> Invocation:
        """Invoke one given instance (from :meth:`open_cold_instance` or :meth:`instances`).

        An instance of the pool is busy for the pool while the call runs (its
        policy does not stop it). ``cold_start`` is true for the first call of
        an instance from :meth:`open_cold_instance` (it was started for it).
        """
        state = self._state_of(instance.spec.name)
        if not isinstance(event, Mapping | None):
            raise SpecError(f"event: must be a JSON object (a mapping), not {type(event).__name__}")
        body = _encode(event or {})
        call = state.place_on(instance)
        if call is None:
            cold = instance.calls == 0
            return await self._call(state, instance, body, timeout, check, cold_start=cold)
        try:
            call.running = True
            return await self._call(state, instance, body, timeout, check, cold_start=False)
        finally:
            state.finish(call)

    def _state_of(self, function: str) -> FunctionPool:
        state = self._functions.get(function)
        if state is None:
            known = ", ".join(self._functions)
            raise SpecError(f"no function named {function!r} (this deployment has: {known})")
        return state

    def instances(self, function: str | None = None) -> list[Instance]:
        """The instances serving now (of one function, or all)."""
        states = [self._functions[function]] if function else self._functions.values()
        return [instance for state in states for instance in state.instances()]

    def scaling_statistics(self) -> dict[str, PoolStatistics]:
        """Each function's pool counters: now, or when the stop began once stopped."""
        if self._pools_at_stop is not None:
            return dict(self._pools_at_stop)
        return {name: pool.scaling_statistics() for name, pool in self._functions.items()}

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
        """Keep one instance position filled until the deployment stops (or its pool
        stops it); a position started on demand that cannot start ends here."""
        pool = self._functions[spec.name]
        try:
            with slot.scope:
                await self._keep_filled(spec, slot, task_status)
        except InstanceStartError as exc:
            if not slot.on_demand:
                raise
            pool.start_failed(slot, exc)
            self._events.publish(
                InstanceStartFailed(
                    at=time.time(), function=spec.name, instance=slot.name, reason=str(exc)
                )
            )
        finally:
            slot.done.set()
            pool.slot_done(slot)
            if slot.on_demand:
                self._save()

    def _start_slot(self, spec: FunctionSpec, slot: Slot) -> None:
        """The pool asks for a new position (on demand, or ahead of it)."""
        assert self._tg is not None, "positions are started on demand once the deployment runs"
        self._tg.start_soon(self._supervise, spec, slot)

    def _stop_slot(self, slot: Slot) -> None:
        """The pool's policy stops an idle position."""
        assert self._tg is not None
        self._tg.start_soon(self._scale_in, slot)

    async def _scale_in(self, slot: Slot) -> None:
        instance = slot.instance
        if instance is not None:
            idle_s = time.monotonic() - (slot.idle_since or time.monotonic())
            self._events.publish(
                InstanceStopping(
                    at=time.time(),
                    function=instance.spec.name,
                    instance=slot.name,
                    container_id=instance.container_id,
                    idle_s=round(idle_s, 4),
                    policy=instance.spec.scaling.policy,
                )
            )
            if instance.memory is not None:
                # The kernel's peak is read while the cgroup exists.
                with anyio.CancelScope(shield=True):
                    await instance.memory.finish(self._sampling_of(instance.memory))
        slot.scope.cancel()

    async def _keep_filled(
        self, spec: FunctionSpec, slot: Slot, task_status: TaskStatus[None]
    ) -> None:
        """Fill one position again and again; the crash policy decides when (``_restart``)."""
        state = self._functions[spec.name]
        name = slot.name
        generation = 0
        while True:
            if self._outage.since is not None:
                # Nothing is created while an outage is ridden out (restore
                # removes what was abandoned, and must not race new containers).
                slot.waiting = "engine-unreachable"
                assert self._tg is not None
                await self._outage.ride_out(self._tg, self._outage.unreachable())
            slot.waiting, slot.retry_at = None, None
            state.instance_starting(slot)
            self._events.publish(
                InstanceStarting(
                    at=time.time(),
                    function=spec.name,
                    instance=name,
                    reason=slot.reason if generation == 0 else "restart",
                )
            )
            outcome = await self._fill_once(spec, slot, name, generation, task_status)
            state.instance_down(slot)
            if self._stopping:
                return
            generation += 1
            if isinstance(outcome, EngineUnreachable):
                # Not the function's doing: wait for the engine (bounded; past
                # the bound the deployment ends and this task is cancelled).
                slot.waiting = "engine-unreachable"
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
                slot.gave_up = True
                self._events.publish(
                    FunctionFailedEvent(
                        at=time.time(),
                        function=spec.name,
                        restarts=slot.restarts,
                        reason=state.failed,
                    )
                )
                state.function_failed()
                self._save()
                return
            slot.restarts += 1
            slot.waiting = "backoff" if decision.backoff_s > 0 else None
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
                node=pinned_node(self._spread, spec.name, slot.index),
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
                self._functions[spec.name].instance_up(slot)
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
        if self._profile is None or self._tg is None:
            return
        if self._nodes is None and self._sampler is None:
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
        if self._nodes is not None:
            # On a swarm: the sampler on the instance's node samples it.
            node = instance.handle.node
            sampler, missing = self._nodes.for_node(node)
            await self._tg.start(
                functools.partial(
                    measurement.run_on_node,
                    self.engine,
                    sampler,
                    node=node,
                    local=node == self._engine_node,
                    missing=missing,
                )
            )
        else:
            assert self._sampler is not None
            pid = await container_pid(self.engine, instance.container_id)
            await self._tg.start(measurement.run, self.engine, self._sampler, pid)
        self._measurements.append(measurement)
        instance.attach_memory(measurement)

    def _sampling_of(self, measurement: Sampler) -> SamplingClient | None:
        """The sampling process that samples ``measurement`` (its node's, on Swarm)."""
        if self._nodes is not None:
            return self._nodes.for_node(measurement.node)[0]
        return self._sampler

    @property
    def _sampler_priority(self) -> str | None:
        if self._nodes is not None:
            return self._nodes.priority
        return self._sampler.priority if self._sampler is not None else None

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
        if self._nodes is not None:
            await self._nodes.start_all(tg)
        async with anyio.create_task_group() as starters:
            for state in self._functions.values():
                for slot in state.deploy():
                    starters.start_soon(self._start_one, tg, state.spec, slot)
        for state in self._functions.values():
            state.run()
            if state.scales:
                tg.start_soon(state.run_timer)
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
        self._pools_at_stop = self.scaling_statistics()
        for state in self._functions.values():
            state.close(f"deployment {self.id} is stopping: no new invocations")
        async with anyio.create_task_group() as tg:
            for measurement in self._measurements:
                tg.start_soon(measurement.finish, self._sampling_of(measurement))
        # A copy: positions leave their pool as they end.
        slots = [slot for state in self._functions.values() for slot in state.slots]
        for slot in slots:
            slot.scope.cancel()
        with anyio.move_on_after(self.spec.stop_grace_s + 60):
            for slot in slots:
                await slot.done.wait()
        if self._sampler is not None:
            self._sampler_scope.cancel()
            with anyio.move_on_after(10):
                await self._sampler_done.wait()
        if self._profile is not None:
            self._profile.close()
        report = None
        path = Path(stats_path) if stats_path is not None else None
        priority = self._sampler_priority
        if path is not None and self._profile is not None:
            report = await anyio.to_thread.run_sync(
                lambda: write_reports(
                    path,
                    self.profile_path,
                    self.id,
                    [m.record() for m in self._measurements],
                    sampler_priority=priority,
                    incomplete_reason=ended_reason,
                    sampler_restarts=self._sampler.restarts if self._sampler else 0,
                )
            )
        elif self._profile is not None:
            report = build_report(
                self.id,
                [m.record() for m in self._measurements],
                sampler_priority=priority,
                incomplete_reason=ended_reason,
                sampler_restarts=self._sampler.restarts if self._sampler else 0,
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
        # Calls waiting for a place or an instance fail now, as new ones do.
        for pool in self._functions.values():
            pool.engine_lost(self._outage.unreachable())
        self._save()

    def _engine_back(self, outage_s: float) -> None:
        self._events.publish(
            EngineBack(at=time.time(), endpoint=self.engine.endpoint, outage_s=round(outage_s, 3))
        )
        for pool in self._functions.values():
            pool.engine_back()
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
        if self._profile is not None:
            sampling = SamplingRecord(
                interval_ms=self.spec.measure_interval_ms,
                profile=str(self.profile_path),
                priority=self._sampler_priority or "",
                pid=self._sampler.pid if self._sampler is not None else None,
                address=str(self._sampler.address) if self._sampler is not None else "",
                restarts=self._sampler.restarts if self._sampler is not None else 0,
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
            pools=[pool.record() for pool in self._functions.values()],
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
