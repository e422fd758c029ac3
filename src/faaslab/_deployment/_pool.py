"""A function's pool: its instance positions, the scaling policy it follows, its queue.

A :class:`FunctionPool` holds a function's positions (``_slot``'s
:class:`Slot`), follows its :class:`~._scaling.ScalingPolicy`
(``_scaling``'s protocol of use, step by step) and feeds a
:class:`~._accounting.PoolAccounting` the same events.

Everything here is synchronous except the two waits of a call (for a place
in the queue, for its instance to be ready), so each change of the pool
happens in one step of the event loop: no two calls can take the same
capacity, and no policy decision sees a pool half changed. The pool does no
I/O: it asks the Deployment actor to start a position (``start_slot``,
which runs its supervisor) or to stop an idle one (``stop_slot``), and the
actor tells it what its supervisors saw (``instance_starting``,
``instance_up``, ``instance_down``, ``slot_done``).

A call:

1. :meth:`FunctionPool.acquire` — the policy admits it onto an instance
   (maybe one it starts for it: a cold start) or queues it, FIFO, bounded by
   ``queue_timeout_s``;
2. :meth:`FunctionPool.ready_instance` — waits for that instance to answer
   (bounded by ``start_timeout_s`` beyond the queue's bound);
3. :meth:`FunctionPool.finish` — always, also when 1 or 2 raised after a place
   was taken: the capacity goes to the queue's head, the policy decides.

The pool never has more than ``max_instances`` containers: an instance being
torn down still counts. A position asked for while the containers are at the
limit exists for the policy at once (calls are placed on it and wait, as on
any starting instance) and is launched, in order, when a teardown ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import anyio
import msgspec

from .._errors import FaaslabError, FunctionFailed, InvocationTimeout
from .._function import Instance
from .._spec import FunctionSpec
from .._state import FunctionRecord, PoolRecord
from ._accounting import PoolAccounting, PoolStatistics
from ._restart import CrashHistory, RestartPolicy, after_death
from ._scaling import InstanceView, PoolView, QueueCall, StartInstance, UseInstance, make_policy
from ._slot import Call, InstanceStatistics, Slot

__all__ = ("DeploymentStatistics", "FunctionPool", "FunctionStatistics")


class FunctionStatistics(msgspec.Struct, frozen=True):
    name: str
    failed: bool
    instances: list[InstanceStatistics]
    invocations: int
    errors: int
    #: The scaling policy, and the pool's counters since the deployment started.
    policy: str = "fixed"
    queued: int = 0
    starts: int = 0
    stops: int = 0
    cold_starts: int = 0
    max_alive: int = 0


class DeploymentStatistics(msgspec.Struct, frozen=True):
    deployment_id: str
    uptime_s: float
    functions: list[FunctionStatistics]
    events_dropped: int
    #: Unix time the engine stopped answering (None while it answers), and
    #: until when the deployment waits for it.
    engine_unreachable_since: float | None = None
    engine_wait_until: float | None = None
    #: Outages ridden out so far.
    engine_outages: int = 0
    #: Why the deployment ended on its own, once it has.
    ended_reason: str | None = None


class FunctionPool:
    """A function's positions, its policy and queue, and counters."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        clock: Callable[[], float],
        start_slot: Callable[[Slot], None],
        stop_slot: Callable[[Slot], None],
        queue_timeout_s: float,
        start_timeout_s: float,
        restart_policy: RestartPolicy,
    ) -> None:
        self.spec = spec
        self.policy = make_policy(
            spec.scaling, instances=spec.instances, concurrency=spec.concurrency
        )
        self.scales = spec.scaling.policy != "fixed"
        self.accounting = PoolAccounting()
        self.slots: list[Slot] = []
        #: Why the function was given up, once it is.
        self.failed: str | None = None
        self.invocations = 0
        self.errors = 0
        self._clock = clock
        self._start_slot = start_slot
        self._stop_slot = stop_slot
        self._queue_timeout_s = queue_timeout_s
        self._start_timeout_s = start_timeout_s
        # Failed starts ahead of demand only back off: they never give the function up.
        self._start_backoff = msgspec.structs.replace(restart_policy, max_restarts=None)
        self._queue: deque[Call] = deque()
        self._next_index = 0
        self._closed: str | None = None
        #: Set while the engine is lost (``_outage``): calls fail fast meanwhile.
        self._unreachable: FaaslabError | None = None
        #: Set once every position of the deploy is up: until then the pool
        #: starts nothing on its own (a failing deploy is torn down as it is).
        self._running = False
        self._next_check_at: float | None = None
        self._timer_changed = anyio.Event()
        #: Starts ahead of demand wait until then after failed starts (backoff).
        self._hold_until = 0.0
        self._start_failures = CrashHistory()
        #: Positions waiting for a teardown to end before they launch (FIFO).
        self._pending: deque[Slot] = deque()

    # -- views -----------------------------------------------------------------

    def _in_view(self, slot: Slot) -> bool:
        return not slot.stopping and not slot.ended

    def view(self, *, ahead: int | None = None) -> PoolView:
        """The pool as the policy sees it (``ahead``: calls queued before the one admitted)."""
        # On every call's path: kept to plain attribute reads.
        instances: list[InstanceView] = []
        append = instances.append
        for slot in self.slots:
            if slot.stopping or slot.ended:
                continue
            inst = slot.instance
            ready = inst is not None and inst.lifecycle.serving
            busy = len(slot.calls)
            append(
                InstanceView(
                    id=slot.name,
                    started_at=slot.started_at,
                    ready=ready,
                    busy=busy,
                    served=inst.calls if inst is not None else 0,
                    idle_since=slot.idle_since if ready and not busy else None,
                )
            )
        return PoolView(
            instances=tuple(instances), queued=len(self._queue) if ahead is None else ahead
        )

    def _slot(self, name: str) -> Slot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise LookupError(f"{name}: not a position of {self.spec.name}")

    def instances(self) -> list[Instance]:
        """The instances serving now, stopping ones excluded."""
        return [s.instance for s in self.slots if s.instance is not None and not s.stopping]

    @property
    def next_check_at(self) -> float | None:
        return self._next_check_at

    # -- deploying, starting, stopping ---------------------------------------------

    def deploy(self) -> list[Slot]:
        """The positions to start with the deployment (the caller starts them)."""
        now = self._clock()
        decision = self.policy.decide(self.view(), now)
        self._set_next_check(decision.next_check_at)
        slots = []
        for _ in range(decision.start):
            slot = self._new_slot(now, on_demand=False, reason="deploy")
            self._launched(slot, now)
            slots.append(slot)
        return slots

    def run(self) -> None:
        """The deploy is up: from now on the pool follows its policy."""
        self._running = True
        self._react(self._clock())

    def _new_slot(self, now: float, *, on_demand: bool, reason: str) -> Slot:
        slot = Slot(
            self.spec.name, self._next_index, started_at=now, on_demand=on_demand, reason=reason
        )
        self._next_index += 1
        self.slots.append(slot)
        return slot

    def _launched(self, slot: Slot, now: float) -> None:
        """The position's supervisor runs from now: its container counts."""
        slot.launched = True
        slot.key = slot.name
        self.accounting.instance_started(slot.key, now)
        for call in slot.calls:  # placed while it waited for a teardown
            call.key = slot.key
            self.accounting.call_started(slot.key, now)

    def _start(self, now: float, reason: str) -> Slot:
        slot = self._new_slot(now, on_demand=True, reason=reason)
        self._pending.append(slot)
        self._launch_pending(now)
        return slot

    def _launch_pending(self, now: float) -> None:
        """Launch waiting positions while the containers are under ``max_instances``."""
        limit = self.spec.scaling.max_instances
        while self._pending:
            if limit is not None:
                containers = sum(s.launched and not s.ended for s in self.slots)
                if containers >= limit:
                    return
            slot = self._pending.popleft()
            self._launched(slot, now)
            self._start_slot(slot)

    def _react(self, now: float) -> None:
        """Ask the policy what to do now, and do it (after every event)."""
        if not self._running or self._closed is not None or self.failed is not None:
            return
        decision = self.policy.decide(self.view(), now)
        for name in decision.stop:
            slot = self._slot(name)
            slot.stopping = True
            self._stop_slot(slot)
        next_check = decision.next_check_at
        if decision.start and now < self._hold_until:
            next_check = min(next_check or self._hold_until, self._hold_until)
        elif decision.start:
            for _ in range(decision.start):
                self._start(now, "policy")
            self._drain(now)
        self._set_next_check(next_check)

    def _set_next_check(self, at: float | None) -> None:
        if at != self._next_check_at:
            self._next_check_at = at
            self._timer_changed.set()
            self._timer_changed = anyio.Event()

    async def run_timer(self) -> None:
        """Decide again at each ``next_check_at`` the policy gave (never polls)."""
        while True:
            changed = self._timer_changed
            at = self._next_check_at
            if at is None:
                await changed.wait()
                continue
            with anyio.move_on_after(max(0.0, at - self._clock())):
                await changed.wait()
            # An event may have moved the check; the clock may wake a hair early.
            if self._next_check_at == at and self._clock() >= at:
                self._react(self._clock())

    # -- calls -------------------------------------------------------------------------

    def _place(self, call: Call, slot: Slot, now: float) -> None:
        slot.calls.add(call)
        slot.idle_since = None
        call.slot = slot
        call.cold = not slot.ready
        call.key = slot.key
        if slot.key is not None:
            self.accounting.call_started(slot.key, now)
        call.wake()

    def _admit(self, call: Call, now: float, *, head: bool, view: PoolView | None = None) -> bool:
        if view is None:
            view = self.view(ahead=0 if head else None)
        match self.policy.admit(view):
            case UseInstance(instance=name):
                self._place(call, self._slot(name), now)
            case StartInstance():
                self._place(call, self._start(now, "call"), now)
            case QueueCall():
                return False
        return True

    def _drain(self, now: float) -> None:
        while self._queue and self._admit(self._queue[0], now, head=True):
            self._queue.popleft()

    def _refuse(self) -> None:
        if self._closed is not None:
            raise FaaslabError(self._closed)
        if self._unreachable is not None:
            raise self._unreachable
        if self.failed is not None:
            raise FunctionFailed(f"{self.spec.name} has failed: {self.failed}")

    async def acquire(self) -> Call:
        """A place for a new call (admitted now, or when its turn comes in the queue)."""
        self._refuse()
        now = self._clock()
        call = Call()
        view = self.view()
        self.policy.on_call(view, now)
        if self._admit(call, now, head=False, view=view):
            # No decision to revisit: the instance it took is busy now (a timer
            # set for its expiry finds it busy), and nothing queued.
            return call
        call.queued()
        self._queue.append(call)
        self._react(now)  # the queue may want instances
        try:
            with anyio.move_on_after(self._queue_timeout_s):
                await call.wait_placed()
        except BaseException:
            self._abandon(call)
            raise
        if call.slot is None:
            self._abandon(call)
            self._refuse()
            alive = len(self.view().instances)
            raise InvocationTimeout(
                f"{self.spec.name}: no instance was free within {self._queue_timeout_s:g} s "
                f"({alive} instance(s), all busy or restarting)"
            )
        return call

    def _abandon(self, call: Call) -> None:
        """A call that gives up: out of the queue, or its place given back."""
        if call.slot is not None:
            self.finish(call)
            return
        try:
            self._queue.remove(call)
        except ValueError:
            return
        self._react(self._clock())

    def place_on(self, instance: Instance) -> Call | None:
        """A place on one given instance of the pool (None: not one of the pool's)."""
        for slot in self.slots:
            if slot.instance is instance and self._in_view(slot):
                call = Call()
                self._place(call, slot, self._clock())
                return call
        return None

    async def ready_instance(self, call: Call) -> Instance:
        """The call's instance, once it answers (at once when it already does)."""
        slot = call.slot
        assert slot is not None
        instance = slot.instance
        if instance is not None and instance.lifecycle.serving and not slot.stopping:
            # A warm call: no cancel scope (tens of µs) on the hot path.
            call.running = True
            return instance
        with anyio.move_on_after(self._queue_timeout_s + self._start_timeout_s):
            while True:
                instance = slot.instance
                if instance is not None and slot.ready and not slot.stopping:
                    call.running = True
                    return instance
                if slot.done.is_set():
                    self._refuse()
                    raise slot.start_error or FaaslabError(
                        f"{slot.name} ended before the call could be made"
                    )
                self._refuse()
                await slot.wait_changed()
        raise InvocationTimeout(
            f"{self.spec.name}: {slot.name} was not ready within "
            f"{self._queue_timeout_s + self._start_timeout_s:g} s"
        )

    def finish(self, call: Call) -> None:
        """The call is over (answered, failed or given up): its capacity goes on."""
        slot = call.slot
        if slot is None or call not in slot.calls:
            return
        now = self._clock()
        slot.calls.discard(call)
        if call.key is not None and call.key == slot.key:
            self.accounting.call_finished(call.key, now)
        if not slot.calls and slot.ready:
            slot.idle_since = now
        self._drain(now)
        if call.running and not slot.calls and slot.ready and self._in_view(slot):
            self.policy.on_idle(slot.name, now)
        self._react(now)

    # -- what the supervisors saw ----------------------------------------------------------

    def instance_starting(self, slot: Slot) -> None:
        """A supervisor creates the position's next container (a restart)."""
        if slot.key is not None:
            return  # the first one: counted when the position was made
        now = self._clock()
        slot.generation += 1
        slot.key = f"{slot.name}#{slot.generation}"
        self.accounting.instance_started(slot.key, now)
        for call in slot.calls:
            if not call.running:
                # Waiting through the restart: now they wait for this container.
                call.key, call.cold = slot.key, True
                self.accounting.call_started(slot.key, now)

    def instance_up(self, slot: Slot) -> None:
        now = self._clock()
        slot.ever_ready = True
        if slot.key is not None:
            self.accounting.instance_ready(slot.key, now)
        if not slot.calls:
            slot.idle_since = now
        slot.notify()
        self._drain(now)
        self._react(now)

    def instance_down(self, slot: Slot) -> None:
        """The position's container is gone (it died, or never became ready on a restart)."""
        now = self._clock()
        self._stopped(slot, now)
        slot.notify()
        self._react(now)

    def _stopped(self, slot: Slot, now: float) -> None:
        if slot.key is not None and self.accounting.is_alive(slot.key):
            self.accounting.instance_stopped(slot.key, now)
        slot.key = None
        slot.idle_since = None

    def start_failed(self, slot: Slot, error: FaaslabError) -> None:
        """A position started on demand never became ready: it ends, its calls get ``error``.

        Starts ahead of demand (min instances, pre-warms) back off as restarts
        do, so a function that cannot start is not restarted in a tight loop;
        a call still starts its own instance (and gets its own error).
        """
        now = self._clock()
        slot.start_error = error
        decision = after_death(self._start_failures, now, "crash", self._start_backoff)
        self._start_failures = decision.history
        self._hold_until = now + decision.backoff_s

    def slot_done(self, slot: Slot) -> None:
        """The position's supervisor ended (stopped by the policy, at stop, or failed)."""
        now = self._clock()
        slot.ended = True
        self._stopped(slot, now)
        if self.scales and self.failed is None and slot in self.slots:
            self.slots.remove(slot)
        slot.notify()
        if self._closed is None:
            self._launch_pending(now)
        self._drain(now)
        self._react(now)

    def function_failed(self) -> None:
        """``failed`` was set: every waiting call is told."""
        self._wake_all()

    def engine_lost(self, error: FaaslabError) -> None:
        """The engine stopped answering: waiting calls fail with ``error``, as new ones do."""
        self._unreachable = error
        self._wake_all()

    def engine_back(self) -> None:
        self._unreachable = None

    def close(self, reason: str) -> None:
        """The deployment stops: no new call, no new instance, waiting calls are told."""
        self._closed = reason
        self._set_next_check(None)
        while self._pending:  # never launched: nothing to stop
            slot = self._pending.popleft()
            slot.ended = True
            slot.done.set()
            self.slots.remove(slot)
            slot.notify()
        self._wake_all()

    def _wake_all(self) -> None:
        while self._queue:
            self._queue.popleft().wake()
        for slot in self.slots:
            slot.notify()

    # -- snapshots -----------------------------------------------------------------------------

    def scaling_statistics(self) -> PoolStatistics:
        return self.accounting.statistics(self._clock())

    def statistics(self) -> FunctionStatistics:
        stats = self.scaling_statistics()
        return FunctionStatistics(
            name=self.spec.name,
            failed=self.failed is not None,
            instances=[slot.statistics() for slot in self.slots],
            invocations=self.invocations,
            errors=self.errors,
            policy=self.spec.scaling.policy,
            queued=len(self._queue),
            starts=stats.starts,
            stops=stats.stops,
            cold_starts=stats.cold_starts,
            max_alive=stats.max_alive,
        )

    def record(self) -> PoolRecord:
        stats = self.scaling_statistics()
        scaling = self.spec.scaling
        return PoolRecord(
            function=self.spec.name,
            policy=scaling.policy,
            min_instances=scaling.min_instances if self.scales else self.spec.instances,
            max_instances=scaling.max_instances if self.scales else self.spec.instances,
            alive=stats.alive,
            max_alive=stats.max_alive,
            starts=stats.starts,
            stops=stats.stops,
            cold_starts=stats.cold_starts,
            queued=len(self._queue),
        )

    def records(self, stopping: bool) -> list[FunctionRecord]:
        gone = "failed" if self.failed is not None else ("stopped" if stopping else "restarting")
        found = (slot.refresh_record(self.spec, gone) for slot in self.slots)
        return [record for record in found if record is not None]
