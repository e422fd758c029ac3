"""Scaling policies: how many instances a function runs, and when (no I/O, no clock).

A function's pool follows one :class:`ScalingPolicy`, made from the function's
:class:`ScalingSpec` by :func:`make_policy`. The policy never reads a clock and
never touches an instance: the pool passes the time in (monotonic seconds, one
clock for the whole deployment) with an immutable :class:`PoolView` of itself,
and acts on what the policy answers. So every policy is tested exhaustively on
hand-written timelines.

How the pool drives a policy::

    call arrives    policy.on_call(view, now)          # before admitting it
                    match policy.admit(view):          # view.queued: calls ahead of it
                        UseInstance(id)  -> the call goes to that instance (it may
                                            still be starting: it waits for it there)
                        StartInstance()  -> start an instance, give it the call (cold start)
                        QueueCall()      -> FIFO queue; admit the head again (queued=0:
                                            nothing ahead of it) whenever an instance
                                            frees up or becomes ready
    last call on an instance finished, no queued call took its place:
                    policy.on_idle(instance_id, now)
    after every event (call admitted, instance ready, call finished, instance
    lost) and when ``now >= decision.next_check_at``:
                    decision = policy.decide(view, now)
                    start decision.start instances; stop the idle instances in
                    decision.stop (and leave them out of every later view);
                    sleep until decision.next_check_at (None: until the next event)

The same events fed to a ``PoolAccounting`` (``_accounting.py``) give the
counters a summary needs: cold starts, instances alive over time, idle
instance-seconds.

The policies:

``fixed`` (the default)
    Today's behaviour: ``instances`` instances always, idle ones never stopped,
    a call queues while every ready instance is at its ``concurrency``.
``keep-alive``
    AWS Lambda's and LocalStack's: from ``min_instances`` (0 allowed) up to
    ``max_instances`` on demand, ``concurrency`` calls per instance at once; a
    call that finds no free instance starts one (a cold start) while under the
    limit and queues otherwise; an instance idle for ``keep_alive_s`` is stopped.
``hybrid-histogram``
    The hybrid histogram policy of M. Shahrad, R. Fonseca, Í. Goiri, G. Chaudhry,
    P. Batum, J. Cooke, E. Laureano, C. Tresness, M. Russinovich, R. Bianchini,
    "Serverless in the Wild: Characterizing and Optimizing the Serverless
    Workload at a Large Cloud Provider", USENIX ATC 2020 (section 4.2), per
    function. It keeps a range-limited histogram of the function's idle times
    (from the end of its last execution to its next call; the paper: 1-minute
    bins over 4 hours). From the histogram's head (5th percentile, rounded down
    to its bin) and tail (99th percentile, rounded up), with a 10 % margin:
    pre-warm window = head x (1 - margin); the instance is wanted warm until
    tail x (1 + margin), so keep-alive window = tail x (1 + margin) - pre-warm.
    After an instance's execution ends it is stopped at once, an instance is
    started at idle start + pre-warm and kept for the keep-alive window; with a
    pre-warm window of 0 it is simply kept for the keep-alive window. While the
    histogram is not representative (fewer than ``min_samples`` idle times, or
    the coefficient of variation of its *bin counts* below ``cv_threshold``,
    paper: 2, a flat histogram predicting nothing) the policy falls back to a
    fixed keep-alive without pre-warming, as the paper does (its fallback
    keep-alive is the histogram range, our default for ``keep_alive_s`` here).
    Idle times beyond the range are counted, not binned; when more than
    ``max_out_of_bounds`` of them are, the paper switches to an ARIMA forecast
    of the next idle time. We use the fixed keep-alive there too, so such
    functions get the standard policy's cold starts and memory cost, not
    ARIMA's savings: ARIMA means a time-series model refitted at every idle
    time and a statistics package faaslab does not depend on, for functions
    called less than once per range (under 6 times a day at 4 hours).
    The paper keeps one histogram per application; the issue asks for one per
    function, which is what a faaslab pool serves.
    The histogram's bins are in the pool's seconds: a trace replayed with
    ``minute_s`` seconds per trace minute mirrors the paper with
    ``histogram_bin_s = minute_s`` and ``histogram_range_s = 240 * minute_s``.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from typing import Protocol

import msgspec

from .._spec import ScalingSpec

__all__ = (
    "Admission",
    "Decision",
    "FixedPolicy",
    "HybridHistogramPolicy",
    "IdleTimeHistogram",
    "InstanceView",
    "KeepAlivePolicy",
    "PoolView",
    "QueueCall",
    "ScalingPolicy",
    "StartInstance",
    "UseInstance",
    "Windows",
    "make_policy",
)

# --- what the pool shows and what the policy answers ------------------------------


class InstanceView(msgspec.Struct, frozen=True, kw_only=True):
    """One instance as the pool sees it now."""

    id: str
    #: When the pool asked for it.
    started_at: float
    #: False while it is starting (not answering yet).
    ready: bool = True
    #: Calls in flight on it, counting calls waiting for it to become ready.
    busy: int = 0
    #: Calls it has finished.
    served: int = 0
    #: Since when it is ready with no call in flight; None while busy or starting.
    idle_since: float | None = None

    @property
    def idle(self) -> bool:
        return self.ready and self.busy == 0


class PoolView(msgspec.Struct, frozen=True, kw_only=True):
    """A function's pool: its instances (not those being stopped) and its queue."""

    instances: tuple[InstanceView, ...] = ()
    #: Calls waiting in the pool's queue; for :meth:`ScalingPolicy.admit`, those
    #: ahead of the call being admitted (0 when it is the queue's head).
    queued: int = 0


class UseInstance(msgspec.Struct, frozen=True, tag="use"):
    instance: str


class StartInstance(msgspec.Struct, frozen=True, tag="start"):
    pass


class QueueCall(msgspec.Struct, frozen=True, tag="queue"):
    pass


Admission = UseInstance | StartInstance | QueueCall


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What the pool does now: start instances, stop idle ones, and when to ask again."""

    start: int = 0
    stop: tuple[str, ...] = ()
    #: Ask again at this time at the latest; None: nothing is due before the next event.
    next_check_at: float | None = None


class Windows(msgspec.Struct, frozen=True, kw_only=True):
    """When an idle function's next instance is wanted warm, and for how long."""

    #: After an execution ends, stop the instance and start one again this much later.
    prewarm_s: float
    #: Keep the (pre-warmed or kept) instance this long.
    keep_alive_s: float
    #: Whether the windows come from the histogram (else from the fallback keep-alive).
    representative: bool
    #: Why, in words (for logs and reports).
    reason: str


class ScalingPolicy(Protocol):
    """What a pool asks its policy (see the module docstring for when)."""

    def on_call(self, view: PoolView, now: float) -> None: ...

    def on_idle(self, instance: str, now: float) -> None: ...

    def admit(self, view: PoolView) -> Admission: ...

    def decide(self, view: PoolView, now: float) -> Decision: ...


def _idle_since(instance: InstanceView) -> float:
    return instance.idle_since if instance.idle_since is not None else instance.started_at


def _admit(view: PoolView, concurrency: int, *, limit: int | None, scaling: bool) -> Admission:
    """The instance for a new call: the one with fewest calls in flight.

    Ties: ``fixed`` takes the one that served fewest (today's routing: every
    instance gets its cold call early in a run); the scaling policies take the
    most recently used, so the others stay idle and reach their keep-alive.
    A scaling policy also uses an instance still starting (a call waits for it
    rather than starting another cold instance); ``fixed`` queues until one is
    ready, as today. A new call never overtakes a queued one.
    """
    if view.queued:
        return QueueCall()
    best: InstanceView | None = None
    best_key: tuple[float, ...] = ()
    for instance in view.instances:
        if instance.busy >= concurrency or (not instance.ready and not scaling):
            continue
        if scaling:
            recency = math.inf if instance.busy else _idle_since(instance)
            key: tuple[float, ...] = (not instance.ready, instance.busy, -recency)
        else:
            key = (instance.busy, instance.served)
        if best is None or key < best_key:
            best, best_key = instance, key
    if best is not None:
        return UseInstance(best.id)
    if limit is not None and len(view.instances) < limit:
        return StartInstance()
    return QueueCall()


def _queue_deficit(view: PoolView, concurrency: int) -> int:
    """Instances needed for queued calls beyond the capacity the pool has."""
    spare = sum(max(0, concurrency - i.busy) for i in view.instances)
    return math.ceil(max(0, view.queued - spare) / concurrency)


class FixedPolicy:
    """``instances`` instances always; idle ones are never stopped."""

    def __init__(self, instances: int, concurrency: int) -> None:
        if instances < 1 or concurrency < 1:
            raise ValueError(f"instances {instances}, concurrency {concurrency}: must be >= 1")
        self.instances = instances
        self.concurrency = concurrency

    def on_call(self, view: PoolView, now: float) -> None:
        pass

    def on_idle(self, instance: str, now: float) -> None:
        pass

    def admit(self, view: PoolView) -> Admission:
        return _admit(view, self.concurrency, limit=None, scaling=False)

    def decide(self, view: PoolView, now: float) -> Decision:
        # A position being restarted by its supervisor stays in the view (not
        # ready), so this only fills the pool at deploy or after a loss.
        return Decision(start=max(0, self.instances - len(view.instances)))


class _Prewarm(msgspec.Struct, frozen=True, order=True):
    start_at: float
    until: float


class _WindowPolicy(ABC):
    """Scale on demand between ``min_instances`` and ``max_instances``, idle
    instances kept or pre-warmed by :meth:`windows` (shared by keep-alive and
    hybrid-histogram: keep-alive is pre-warm 0 and a constant keep-alive).
    """

    def __init__(self, spec: ScalingSpec, concurrency: int) -> None:
        if spec.policy == "fixed" or spec.max_instances is None:
            raise ValueError(f"policy {spec.policy!r} does not scale")
        if concurrency < 1:
            raise ValueError(f"concurrency {concurrency}: must be >= 1")
        self.spec = spec
        self.concurrency = concurrency
        self.min_instances = spec.min_instances
        self.max_instances = spec.max_instances
        #: Pre-warm starts not yet due, earliest first.
        self._pending: list[_Prewarm] = []
        #: Instances stopped with a pre-warm scheduled (so a repeated decide
        #: before the pool drops them schedules nothing twice).
        self._unloaded: set[str] = set()

    @abstractmethod
    def windows(self) -> Windows:
        """The windows an instance going idle now gets."""

    @property
    def pending_prewarms(self) -> tuple[float, ...]:
        """When the scheduled pre-warm starts are due."""
        return tuple(p.start_at for p in self._pending)

    def on_call(self, view: PoolView, now: float) -> None:
        # The call a pre-warm was scheduled for has come (maybe early): the
        # earliest pending one is spent, whichever instance serves the call.
        if self._pending:
            self._pending.pop(0)

    def admit(self, view: PoolView) -> Admission:
        return _admit(view, self.concurrency, limit=self.max_instances, scaling=True)

    def decide(self, view: PoolView, now: float) -> Decision:
        windows = self.windows()
        # An unloaded instance is one the pool is still to drop (and only while idle).
        self._unloaded &= {i.id for i in view.instances if i.idle}
        alive = len(view.instances)
        stop: list[str] = []
        wake: list[float] = []
        # Oldest idle first: those are stopped first, the freshest kept for min_instances.
        for instance in sorted((i for i in view.instances if i.idle), key=_idle_since):
            since = _idle_since(instance)
            if instance.id in self._unloaded:
                stop.append(instance.id)
                alive -= 1
                continue
            if instance.served and windows.prewarm_s > 0:
                start_at = since + windows.prewarm_s
                until = start_at + windows.keep_alive_s
                if now < start_at:
                    if alive > self.min_instances:
                        stop.append(instance.id)
                        alive -= 1
                        self._unloaded.add(instance.id)
                        bisect.insort(self._pending, _Prewarm(start_at, until))
                    # else it is the warm instance min_instances asks for
                    continue
                # Kept past its pre-warm time (for min_instances): it is the pre-warmed one.
                expiry = until
            else:
                # Pre-warmed (never served) instances count their keep-alive from
                # when they are warm: idle_since is when they became ready.
                expiry = since + windows.keep_alive_s
            if alive > self.min_instances:
                if now >= expiry:
                    stop.append(instance.id)
                    alive -= 1
                else:
                    wake.append(expiry)
        due = 0
        while self._pending and self._pending[0].start_at <= now:
            if self._pending.pop(0).until > now:
                due += 1
        if self._pending:
            wake.append(self._pending[0].start_at)
        wanted = max(due, self.min_instances - alive, _queue_deficit(view, self.concurrency))
        start = max(0, min(wanted, self.max_instances - alive))
        return Decision(start=start, stop=tuple(stop), next_check_at=min(wake, default=None))


class KeepAlivePolicy(_WindowPolicy):
    """On demand up to ``max_instances``; an instance idle for ``keep_alive_s`` is stopped."""

    def __init__(self, spec: ScalingSpec, concurrency: int) -> None:
        super().__init__(spec, concurrency)
        self._windows = Windows(
            prewarm_s=0.0,
            keep_alive_s=spec.resolved_keep_alive_s,
            representative=False,
            reason="fixed keep-alive",
        )

    def on_idle(self, instance: str, now: float) -> None:
        # Nothing to learn: the view's idle_since is all this policy needs.
        pass

    def windows(self) -> Windows:
        return self._windows


class IdleTimeHistogram:
    """A range-limited histogram of idle times (seconds), as in the ATC'20 paper."""

    __slots__ = ("_sum_of_squares", "bin_s", "counts", "in_bounds", "out_of_bounds", "range_s")

    def __init__(self, bin_s: float, range_s: float, bins: int) -> None:
        self.bin_s = bin_s
        self.range_s = range_s
        self.counts = [0] * bins
        self.in_bounds = 0
        self.out_of_bounds = 0
        #: Of the bin counts, kept as they grow: the CV without a pass over the bins.
        self._sum_of_squares = 0

    @property
    def samples(self) -> int:
        return self.in_bounds + self.out_of_bounds

    def add(self, idle_s: float) -> None:
        idle_s = max(0.0, idle_s)
        if idle_s >= self.range_s:
            self.out_of_bounds += 1
            return
        index = min(int(idle_s // self.bin_s), len(self.counts) - 1)
        self._sum_of_squares += 2 * self.counts[index] + 1  # (c + 1)^2 - c^2
        self.counts[index] += 1
        self.in_bounds += 1

    def cv(self) -> float:
        """Coefficient of variation of the bin counts (population; 0 when empty).

        One spike (all idle times alike) gives the largest, sqrt(bins - 1); a
        flat histogram 0: the paper's test of a pattern worth predicting.
        """
        if not self.in_bounds:
            return 0.0
        bins = len(self.counts)
        mean = self.in_bounds / bins
        variance = max(0.0, self._sum_of_squares / bins - mean * mean)
        return math.sqrt(variance) / mean

    def _bin_of(self, percent: float) -> int:
        """The bin holding the given percentile of the in-bound idle times."""
        wanted = percent / 100 * self.in_bounds
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen and seen >= wanted:
                return index
        return len(self.counts) - 1

    def head_s(self, percent: float) -> float:
        """The percentile rounded down to its bin's lower edge."""
        return self._bin_of(percent) * self.bin_s

    def tail_s(self, percent: float) -> float:
        """The percentile rounded up to its bin's upper edge."""
        return min((self._bin_of(percent) + 1) * self.bin_s, self.range_s)


class HybridHistogramPolicy(_WindowPolicy):
    """Shahrad et al.'s hybrid histogram policy (USENIX ATC'20), per function.

    Idle time: from the moment the function has nothing in flight (its last
    busy instance went idle) to its next call; one sample per idle period,
    as the paper's per-application idle times.
    """

    def __init__(self, spec: ScalingSpec, concurrency: int) -> None:
        super().__init__(spec, concurrency)
        self.histogram = IdleTimeHistogram(
            spec.histogram_bin_s, spec.histogram_range_s, spec.histogram_bins
        )
        self._function_idle_since: float | None = None
        self._windows: Windows | None = None

    def on_call(self, view: PoolView, now: float) -> None:
        since = self._function_idle_since
        self._function_idle_since = None
        if since is not None and not view.queued and all(i.busy == 0 for i in view.instances):
            self.histogram.add(now - since)
            self._windows = None
        super().on_call(view, now)

    def on_idle(self, instance: str, now: float) -> None:
        self._function_idle_since = now

    def windows(self) -> Windows:
        if self._windows is None:
            self._windows = self._compute_windows()
        return self._windows

    def _compute_windows(self) -> Windows:
        spec, histogram = self.spec, self.histogram
        samples = histogram.samples
        if samples < spec.min_samples:
            return self._fallback(f"{samples} idle time(s), fewer than {spec.min_samples}")
        if histogram.out_of_bounds > spec.max_out_of_bounds * samples:
            return self._fallback(
                f"{histogram.out_of_bounds} of {samples} idle times beyond "
                f"{spec.histogram_range_s:g} s"
            )
        cv = histogram.cv()
        if cv < spec.cv_threshold:
            return self._fallback(f"bin counts' CV {cv:.3g} below {spec.cv_threshold:g}")
        prewarm = histogram.head_s(spec.head_percentile) * (1 - spec.margin)
        warm_until = histogram.tail_s(spec.tail_percentile) * (1 + spec.margin)
        return Windows(
            prewarm_s=prewarm,
            keep_alive_s=warm_until - prewarm,
            representative=True,
            reason=f"histogram of {samples} idle times, CV {cv:.3g}",
        )

    def _fallback(self, reason: str) -> Windows:
        return Windows(
            prewarm_s=0.0,
            keep_alive_s=self.spec.resolved_keep_alive_s,
            representative=False,
            reason=f"fixed keep-alive: {reason}",
        )


def make_policy(spec: ScalingSpec, *, instances: int, concurrency: int) -> ScalingPolicy:
    """The policy a function's pool follows (``instances`` is read by ``fixed`` only)."""
    match spec.policy:
        case "fixed":
            return FixedPolicy(instances, concurrency)
        case "keep-alive":
            return KeepAlivePolicy(spec, concurrency)
        case "hybrid-histogram":
            return HybridHistogramPolicy(spec, concurrency)
