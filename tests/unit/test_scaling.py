"""Scaling policies (no I/O): specs, admission, decisions, and whole timelines on a fake pool."""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import tomllib
from collections import deque
from dataclasses import dataclass

import pytest

from faaslab import SpecError
from faaslab._deployment._accounting import PoolAccounting, PoolStatistics
from faaslab._deployment._routing import pick
from faaslab._deployment._scaling import (
    Decision,
    FixedPolicy,
    HybridHistogramPolicy,
    IdleTimeHistogram,
    InstanceView,
    KeepAlivePolicy,
    PoolView,
    QueueCall,
    ScalingPolicy,
    StartInstance,
    UseInstance,
    make_policy,
)
from faaslab._spec import DEFAULT_KEEP_ALIVE_S, ScalingSpec, scaling_spec_from_data

# --- the spec ------------------------------------------------------------------------


def test_defaults_are_fixed_and_the_paper_s_parameters() -> None:
    spec = ScalingSpec()
    assert spec.policy == "fixed"
    assert (spec.histogram_bin_s, spec.histogram_range_s, spec.histogram_bins) == (60, 14400, 240)
    assert (spec.head_percentile, spec.tail_percentile, spec.margin) == (5, 99, 0.10)
    assert spec.cv_threshold == 2
    assert ScalingSpec(policy="keep-alive", max_instances=4).resolved_keep_alive_s == 600
    assert DEFAULT_KEEP_ALIVE_S == 600
    hybrid = ScalingSpec(policy="hybrid-histogram", max_instances=4)
    assert hybrid.resolved_keep_alive_s == hybrid.histogram_range_s
    assert (
        ScalingSpec(policy="keep-alive", max_instances=1, keep_alive_s=0).resolved_keep_alive_s == 0
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"keep_alive_s": 30}, "scaling.keep_alive_s: 30; policy 'fixed' runs `instances`"),
        ({"min_instances": 1}, "scaling.min_instances: 1; policy 'fixed'"),
        ({"max_instances": 3}, "scaling.max_instances: 3; policy 'fixed'"),
        ({"policy": "keep-alive"}, "scaling.max_instances: None; policy 'keep-alive' needs"),
        ({"policy": "hybrid-histogram"}, "scaling.max_instances: None; policy 'hybrid-histogram'"),
        (
            {"policy": "keep-alive", "max_instances": 2, "min_instances": 3},
            r"scaling.max_instances: 2; must be >= min_instances \(3\)",
        ),
        ({"policy": "keep-alive", "max_instances": 0}, "scaling.max_instances: 0; must be >= 1"),
        (
            {"policy": "keep-alive", "max_instances": 2, "min_instances": -1},
            "scaling.min_instances: -1",
        ),
        (
            {"policy": "keep-alive", "max_instances": 2, "keep_alive_s": -1},
            "scaling.keep_alive_s: -1; must be a finite number of seconds >= 0",
        ),
        (
            {"policy": "keep-alive", "max_instances": 2, "keep_alive_s": math.nan},
            "scaling.keep_alive_s: nan",
        ),
        (
            {"policy": "keep-alive", "max_instances": 2, "keep_alive_s": math.inf},
            "scaling.keep_alive_s: inf",
        ),
        ({"histogram_bin_s": 0}, "scaling.histogram_bin_s: 0"),
        ({"histogram_range_s": 30}, r"scaling.histogram_range_s: 30; must be finite seconds >= "),
        ({"histogram_range_s": 1e9}, "makes 16666667 bins"),
        ({"head_percentile": 100}, "scaling.head_percentile: 100"),
        ({"tail_percentile": 5}, r"scaling.tail_percentile: 5; must be in \(5, 100\]"),
        ({"tail_percentile": 101}, "scaling.tail_percentile: 101"),
        ({"margin": 1}, r"scaling.margin: 1; must be a fraction in \[0, 1\)"),
        ({"min_samples": 0}, "scaling.min_samples: 0"),
        ({"cv_threshold": -1}, "scaling.cv_threshold: -1"),
        (
            {"histogram_range_s": 240, "cv_threshold": 2},
            r"scaling.cv_threshold: 2; must be in \[0, 1.73\]: the CV of 4 bin counts",
        ),
        ({"max_out_of_bounds": 1.5}, "scaling.max_out_of_bounds: 1.5"),
    ],
)
def test_bad_specs_name_the_field_and_value(fields: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        ScalingSpec(**fields)  # type: ignore[arg-type]


def test_a_spec_from_toml_and_json_alike() -> None:
    toml = tomllib.loads(
        'scaling = { policy = "hybrid-histogram", max_instances = 4, min_instances = 0,'
        " histogram_bin_s = 1, histogram_range_s = 240 }"
    )["scaling"]
    from_json = json.loads(
        '{"policy": "hybrid-histogram", "max_instances": 4, "min_instances": 0,'
        ' "histogram_bin_s": 1, "histogram_range_s": 240}'
    )
    expected = ScalingSpec(
        policy="hybrid-histogram", max_instances=4, histogram_bin_s=1, histogram_range_s=240
    )
    assert scaling_spec_from_data(toml) == scaling_spec_from_data(from_json) == expected
    assert scaling_spec_from_data({}) == ScalingSpec()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"policy": "lru"}, r"scaling.policy: 'lru' is not a policy \(one of: fixed, keep-alive, "),
        ({"policy": "keep-alive", "max_instances": 2, "keepalive": 3}, "unknown field `keepalive`"),
        ({"policy": "keep-alive", "max_instances": "2"}, r"Expected `int \| null`, got `str`"),
        # __post_init__'s own message, not msgspec's path-less wrapper
        (
            {"policy": "keep-alive", "max_instances": 1, "min_instances": 2},
            r"^scaling.max_instances: 1; must be >= min_instances \(2\)$",
        ),
        ([], "scaling: Expected `object`, got `array`"),
    ],
)
def test_decoded_specs_fail_as_spec_errors(data: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        scaling_spec_from_data(data)


def test_make_policy_builds_each_policy() -> None:
    fixed = make_policy(ScalingSpec(), instances=3, concurrency=2)
    assert isinstance(fixed, FixedPolicy)
    assert (fixed.instances, fixed.concurrency) == (3, 2)
    spec = ScalingSpec(policy="keep-alive", max_instances=2)
    assert isinstance(make_policy(spec, instances=1, concurrency=1), KeepAlivePolicy)
    spec = ScalingSpec(policy="hybrid-histogram", max_instances=2)
    assert isinstance(make_policy(spec, instances=1, concurrency=1), HybridHistogramPolicy)
    with pytest.raises(ValueError, match="does not scale"):
        KeepAlivePolicy(ScalingSpec(), 1)


# --- views --------------------------------------------------------------------------


def inst(
    id: str,
    *,
    busy: int = 0,
    served: int = 0,
    ready: bool = True,
    idle_since: float | None = None,
    started_at: float = 0.0,
) -> InstanceView:
    if ready and not busy and idle_since is None:
        idle_since = started_at
    return InstanceView(
        id=id, started_at=started_at, ready=ready, busy=busy, served=served, idle_since=idle_since
    )


def view(*instances: InstanceView, queued: int = 0) -> PoolView:
    return PoolView(instances=instances, queued=queued)


def keep_alive(**fields: object) -> KeepAlivePolicy:
    concurrency = int(fields.pop("concurrency", 1))  # type: ignore[call-overload]
    spec = ScalingSpec(policy="keep-alive", **fields)  # type: ignore[arg-type]
    return KeepAlivePolicy(spec, concurrency)


# --- fixed --------------------------------------------------------------------------


def test_fixed_fills_the_pool_and_never_stops() -> None:
    policy = FixedPolicy(3, 1)
    assert policy.decide(view(), 0.0) == Decision(start=3)
    idle_for_ages = view(*(inst(f"i{n}", served=5, idle_since=0.0) for n in range(3)))
    assert policy.decide(idle_for_ages, 1e9) == Decision()
    # A position restarting (not ready) still counts: no second instance for it.
    restarting = view(inst("a"), inst("b"), inst("c", ready=False))
    assert policy.decide(restarting, 5.0) == Decision()
    assert policy.decide(view(inst("a"), inst("b")), 5.0) == Decision(start=1)


def test_fixed_admits_like_today_s_router_and_queues_when_busy() -> None:
    policy = FixedPolicy(3, 2)
    busy = view(inst("a", busy=2), inst("b", busy=2), inst("c", ready=False))
    assert policy.admit(busy) == QueueCall()  # never starts, never waits on a start
    assert policy.admit(view(inst("a", busy=1), inst("b", busy=1, served=3))) == UseInstance("a")


@dataclass
class _Candidate:
    id: str
    has_capacity: bool
    in_flight: int
    calls: int


def test_fixed_chooses_exactly_what_routing_pick_chooses() -> None:
    rng = random.Random(7)
    policy = FixedPolicy(4, 3)
    for _ in range(2000):
        instances = [
            inst(
                f"i{n}", busy=rng.randint(0, 3), served=rng.randint(0, 4), ready=rng.random() > 0.2
            )
            for n in range(rng.randint(0, 5))
        ]
        candidates = [_Candidate(i.id, i.ready and i.busy < 3, i.busy, i.served) for i in instances]
        chosen = pick(candidates)
        expected = QueueCall() if chosen is None else UseInstance(chosen.id)
        assert policy.admit(view(*instances)) == expected


# --- keep-alive: admission ----------------------------------------------------------


def test_keep_alive_admits_start_then_queue_at_the_limit() -> None:
    policy = keep_alive(max_instances=2)
    assert policy.admit(view()) == StartInstance()
    assert policy.admit(view(inst("a", busy=1, ready=False))) == StartInstance()
    full = view(inst("a", busy=1, ready=False), inst("b", busy=1))
    assert policy.admit(full) == QueueCall()
    assert policy.admit(view(inst("a", busy=1), inst("b"))) == UseInstance("b")


def test_a_new_call_never_overtakes_a_queued_one() -> None:
    policy = keep_alive(max_instances=2)
    assert policy.admit(view(inst("a"), queued=1)) == QueueCall()


def test_scaling_ties_go_to_the_most_recently_used_and_ready_first() -> None:
    policy = keep_alive(max_instances=4, concurrency=4)
    older, newer = inst("old", idle_since=5.0, served=1), inst("new", idle_since=8.0, served=9)
    assert policy.admit(view(older, newer)) == UseInstance("new")
    # fewest in flight first, whatever the recency
    assert policy.admit(view(inst("a", busy=2), inst("b", busy=1))) == UseInstance("b")
    starting = inst("s", ready=False)
    assert policy.admit(view(starting, inst("r", busy=3))) == UseInstance("r")
    assert policy.admit(view(starting, inst("r", busy=4))) == UseInstance("s")


def test_concurrency_packs_calls_onto_starting_instances_before_starting_more() -> None:
    policy = keep_alive(max_instances=2, concurrency=3)
    pool: list[InstanceView] = []
    answers = []
    for _ in range(7):
        answer = policy.admit(view(*pool))
        answers.append(answer)
        match answer:
            case StartInstance():
                pool.append(inst(f"i{len(pool)}", busy=1, ready=False))
            case UseInstance(instance=chosen):
                pool = [
                    inst(i.id, busy=i.busy + 1, ready=False) if i.id == chosen else i for i in pool
                ]
            case QueueCall():
                pass
    start, use0, use1, queue = StartInstance(), UseInstance("i0"), UseInstance("i1"), QueueCall()
    assert answers == [start, use0, use0, start, use1, use1, queue]


# --- keep-alive: decisions ----------------------------------------------------------


def test_keep_alive_from_zero_starts_nothing_ahead_of_demand() -> None:
    assert keep_alive(max_instances=3).decide(view(), 0.0) == Decision()


def test_keep_alive_stops_exactly_after_keep_alive_s_not_before() -> None:
    policy = keep_alive(max_instances=3, keep_alive_s=30)
    pool = view(inst("a", served=1, idle_since=10.0), inst("b", busy=1))
    assert policy.decide(pool, 39.999) == Decision(next_check_at=40.0)
    assert policy.decide(pool, 40.0) == Decision(stop=("a",))


def test_keep_alive_zero_stops_at_once() -> None:
    policy = keep_alive(max_instances=1, keep_alive_s=0)
    assert policy.decide(view(inst("a", served=1, idle_since=3.0)), 3.0) == Decision(stop=("a",))


def test_min_instances_are_started_and_kept_the_freshest_first() -> None:
    policy = keep_alive(max_instances=5, min_instances=2, keep_alive_s=10)
    assert policy.decide(view(), 0.0) == Decision(start=2)
    pool = view(
        inst("old", served=1, idle_since=0.0),
        inst("mid", served=1, idle_since=1.0),
        inst("new", served=1, idle_since=2.0),
    )
    assert policy.decide(pool, 5.0) == Decision(next_check_at=10.0)
    assert policy.decide(pool, 100.0) == Decision(stop=("old",))
    kept = view(inst("mid", served=1, idle_since=1.0), inst("new", served=1, idle_since=2.0))
    assert policy.decide(kept, 1e6) == Decision()  # nothing due: no timer either
    assert policy.decide(view(inst("new", busy=1)), 1e6) == Decision(start=1)


def test_queued_calls_get_instances_when_under_the_limit() -> None:
    # After an instance was lost, the queue waits on capacity the pool no longer has.
    policy = keep_alive(max_instances=4, concurrency=2)
    pool = view(inst("a", busy=2), inst("b", busy=1), queued=4)
    assert policy.decide(pool, 1.0) == Decision(start=2)
    crowded = view(*(inst(f"i{n}", busy=2) for n in range(4)), queued=9)
    assert policy.decide(crowded, 1.0) == Decision()


# --- a fake pool: the pool's side of the contract, on a simulated clock ---------------


@dataclass
class _Instance:
    id: str
    started_at: float
    ready: bool = False
    busy: int = 0
    served: int = 0
    idle_since: float | None = None


class FakePool:
    """Follows ``_scaling``'s contract: instances start in ``startup_s``, calls take ``exec_s``."""

    def __init__(self, policy: ScalingPolicy, *, startup_s: float = 2.0, exec_s: float = 1.0):
        self.policy = policy
        self.startup_s = startup_s
        self.exec_s = exec_s
        self.accounting = PoolAccounting()
        self.instances: dict[str, _Instance] = {}
        self.queue: deque[float] = deque()
        self.now = 0.0
        self.next_check: float | None = None
        self.log: list[tuple[float, str, str]] = []
        #: (arrival, cold) per call placed
        self.calls: list[tuple[float, bool]] = []
        self._events: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self._ids = itertools.count()

    def view(self, *, ahead: int | None = None) -> PoolView:
        return PoolView(
            instances=tuple(
                InstanceView(
                    id=i.id,
                    started_at=i.started_at,
                    ready=i.ready,
                    busy=i.busy,
                    served=i.served,
                    idle_since=i.idle_since,
                )
                for i in self.instances.values()
            ),
            queued=len(self.queue) if ahead is None else ahead,
        )

    def call_at(self, *times: float) -> None:
        for t in times:
            self._push(t, "call", "")

    def run(self, until: float) -> PoolStatistics:
        self._decide()
        while True:
            event_at = self._events[0][0] if self._events else math.inf
            check_at = self.next_check if self.next_check is not None else math.inf
            t = min(event_at, check_at)
            if t > until:
                break
            self.now = t
            if event_at <= check_at:
                _, _, kind, arg = heapq.heappop(self._events)
                getattr(self, f"_on_{kind}")(arg)
            self._decide()
        self.now = until
        return self.accounting.statistics(until)

    def _push(self, t: float, kind: str, arg: str) -> None:
        heapq.heappush(self._events, (t, next(self._seq), kind, arg))

    def _start(self) -> _Instance:
        instance = _Instance(id=f"i{next(self._ids)}", started_at=self.now)
        self.instances[instance.id] = instance
        self.accounting.instance_started(instance.id, self.now)
        self.log.append((self.now, "start", instance.id))
        self._push(self.now + self.startup_s, "ready", instance.id)
        return instance

    def _place(self, instance: _Instance, arrival: float) -> None:
        instance.busy += 1
        instance.idle_since = None
        self.accounting.call_started(instance.id, self.now)
        self.calls.append((arrival, not instance.ready))
        if instance.ready:
            self._push(self.now + self.exec_s, "finish", instance.id)

    def _admit(self, arrival: float, *, head: bool = False) -> bool:
        match self.policy.admit(self.view(ahead=0 if head else None)):
            case UseInstance(instance=chosen):
                self._place(self.instances[chosen], arrival)
            case StartInstance():
                self._place(self._start(), arrival)
            case QueueCall():
                return False
        return True

    def _drain(self) -> None:
        while self.queue:
            arrival = self.queue.popleft()
            if not self._admit(arrival, head=True):
                self.queue.appendleft(arrival)
                return

    def _on_call(self, _: str) -> None:
        self.policy.on_call(self.view(), self.now)
        if not self._admit(self.now):
            self.queue.append(self.now)

    def _on_ready(self, instance_id: str) -> None:
        instance = self.instances[instance_id]
        instance.ready = True
        self.accounting.instance_ready(instance_id, self.now)
        for _ in range(instance.busy):
            self._push(self.now + self.exec_s, "finish", instance_id)
        if not instance.busy:
            instance.idle_since = self.now
        self._drain()

    def _on_finish(self, instance_id: str) -> None:
        instance = self.instances[instance_id]
        instance.busy -= 1
        instance.served += 1
        self.accounting.call_finished(instance_id, self.now)
        if not instance.busy:
            instance.idle_since = self.now
        self._drain()
        if not instance.busy:
            self.policy.on_idle(instance_id, self.now)

    def _decide(self) -> None:
        decision = self.policy.decide(self.view(), self.now)
        for instance_id in decision.stop:
            instance = self.instances.pop(instance_id)
            assert instance.ready, "a policy stops ready instances only"
            assert not instance.busy, "a policy stops idle instances only"
            self.accounting.instance_stopped(instance_id, self.now)
            self.log.append((self.now, "stop", instance_id))
        for _ in range(decision.start):
            self._start()
        if decision.start:
            self._drain()
        self.next_check = decision.next_check_at
        if self.next_check is not None:
            assert self.next_check > self.now, "next_check_at must lie ahead (no polling)"

    def stops(self) -> list[float]:
        return [t for t, what, _ in self.log if what == "stop"]

    def starts(self) -> list[float]:
        return [t for t, what, _ in self.log if what == "start"]


def test_fixed_on_the_fake_pool_runs_n_instances_whatever_the_load() -> None:
    pool = FakePool(FixedPolicy(2, 1))
    pool.call_at(0.0, 0.0, 0.0, 100.0, 5000.0)
    stats = pool.run(10_000.0)
    assert pool.starts() == [0.0, 0.0]
    assert pool.stops() == []
    assert stats.cold_starts == 0  # started ahead of demand: calls waited for readiness
    assert [cold for _, cold in pool.calls] == [False] * 5
    assert stats.alive_timeline == ((0.0, 2),)


def test_keep_alive_on_the_fake_pool_scales_up_queues_and_scales_to_zero() -> None:
    pool = FakePool(keep_alive(max_instances=2, keep_alive_s=30), startup_s=2, exec_s=1)
    pool.call_at(0.0, 0.0, 0.0, 10.0)
    stats = pool.run(1000.0)
    # Two cold starts at 0 (the limit), the third call queued until 3.0 (first ready
    # at 2, its call ends at 3), then served warm; the call at 10 is warm.
    assert pool.starts() == [0.0, 0.0]
    assert pool.calls == [(0.0, True), (0.0, True), (0.0, False), (10.0, False)]
    # i1 idle from 3 (its only call), i0 from 11 (after the 10 s call): stopped
    # exactly keep_alive_s later.
    assert pool.log[-2:] == [(33.0, "stop", "i1"), (41.0, "stop", "i0")]
    assert stats.cold_starts == 2
    assert stats.max_alive == 2
    assert stats.alive == 0
    assert stats.alive_timeline == ((0.0, 2), (33.0, 1), (41.0, 0))
    assert stats.idle_instance_s == pytest.approx(30 + 30 + (10 - 4))


def test_keep_alive_on_the_fake_pool_keeps_min_instances_warm() -> None:
    pool = FakePool(keep_alive(max_instances=3, min_instances=1, keep_alive_s=5))
    pool.call_at(100.0, 100.0)
    stats = pool.run(1000.0)
    assert pool.starts() == [0.0, 100.0]  # the min one at deploy, one cold for the 2nd call
    # i0 idle from 101, i1 (ready 102) from 103: the older one goes, the fresher
    # one is the instance min_instances keeps.
    assert pool.log[-1] == (106.0, "stop", "i0")
    assert list(pool.instances) == ["i1"]
    assert stats.cold_starts == 1
    assert stats.alive == 1


# --- hybrid histogram ---------------------------------------------------------------


def test_the_histogram_bins_counts_out_of_bounds_and_rounds_percentiles_outwards() -> None:
    histogram = IdleTimeHistogram(60.0, 600.0, 10)
    for idle in (0.0, 59.9, 60.0, 125.0, 599.0, 600.0, 1e6, -3.0):
        histogram.add(idle)
    assert histogram.counts == [3, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert (histogram.in_bounds, histogram.out_of_bounds, histogram.samples) == (6, 2, 8)
    assert histogram.head_s(5) == 0.0
    assert histogram.head_s(60) == 60.0  # 3 of 6 in bin 0, the 4th (60 %) in bin 1
    assert histogram.tail_s(99) == 600.0
    assert histogram.tail_s(50) == 60.0


def test_the_histogram_cv_is_of_bin_counts_spike_high_flat_zero() -> None:
    spike = IdleTimeHistogram(60.0, 14_400.0, 240)
    for _ in range(50):
        spike.add(610.0)
    assert spike.cv() == pytest.approx(math.sqrt(239))
    flat = IdleTimeHistogram(60.0, 14_400.0, 240)
    for n in range(240):
        flat.add(n * 60 + 1.0)
    assert flat.cv() == 0.0
    assert IdleTimeHistogram(60.0, 600.0, 10).cv() == 0.0


def hybrid(**fields: object) -> HybridHistogramPolicy:
    fields.setdefault("max_instances", 4)
    concurrency = int(fields.pop("concurrency", 1))  # type: ignore[call-overload]
    spec = ScalingSpec(policy="hybrid-histogram", **fields)  # type: ignore[arg-type]
    return HybridHistogramPolicy(spec, concurrency)


def feed(policy: HybridHistogramPolicy, gaps: list[float]) -> None:
    """Idle periods of the given lengths: idle at t, the next call at t + gap."""
    t = 0.0
    for gap in gaps:
        policy.on_idle("a", t)
        t += gap
        policy.on_call(view(), t)
        t += 1.0


def test_too_few_idle_times_fall_back_to_the_fixed_keep_alive() -> None:
    policy = hybrid(min_samples=10)
    feed(policy, [600.0] * 9)
    windows = policy.windows()
    assert not windows.representative
    assert (windows.prewarm_s, windows.keep_alive_s) == (0.0, 14_400.0)
    assert "9 idle time(s), fewer than 10" in windows.reason
    feed(policy, [600.0])
    assert policy.windows().representative
    assert hybrid(keep_alive_s=120).windows().keep_alive_s == 120


def test_a_periodic_function_gets_prewarm_near_its_period_and_a_short_keep_alive() -> None:
    period = 630.0  # the middle of bin 10 (600-660 s)
    policy = hybrid()
    feed(policy, [period] * 20)
    windows = policy.windows()
    assert windows.representative
    assert windows.prewarm_s == pytest.approx(600 * 0.9)
    assert period * 0.9 - 60 <= windows.prewarm_s <= period * 0.9
    assert windows.keep_alive_s == pytest.approx(660 * 1.1 - 540)  # warm until tail + 10 %
    assert windows.keep_alive_s < period / 3


def test_a_flat_histogram_is_not_representative() -> None:
    rng = random.Random(3)
    policy = hybrid()
    feed(policy, [rng.uniform(0, 14_400) for _ in range(2400)])
    windows = policy.windows()
    assert not windows.representative
    assert windows.prewarm_s == 0.0
    assert windows.keep_alive_s == 14_400.0
    assert "CV" in windows.reason
    assert "below 2" in windows.reason


def test_out_of_bound_idle_times_beyond_the_threshold_fall_back() -> None:
    policy = hybrid(max_out_of_bounds=0.5)
    feed(policy, [630.0] * 10 + [20_000.0] * 9)
    assert policy.windows().representative  # 9 of 19 beyond: under half
    # Percentiles come from the in-bound idle times only.
    assert policy.windows().prewarm_s == pytest.approx(540)
    feed(policy, [20_000.0] * 2)
    windows = policy.windows()
    assert not windows.representative
    assert "11 of 21 idle times beyond 14400 s" in windows.reason


def test_idle_time_runs_from_when_the_whole_function_went_idle() -> None:
    policy = hybrid(min_samples=1)
    policy.on_idle("a", 0.0)
    policy.on_call(view(inst("a"), inst("b", busy=1)), 5.0)  # b still busy: no idle period
    assert policy.histogram.samples == 0
    policy.on_idle("b", 10.0)
    policy.on_idle("a", 20.0)
    policy.on_call(view(inst("a"), inst("b")), 21.0)
    policy.on_call(view(inst("a", busy=1), inst("b")), 22.0)  # one sample per idle period
    assert policy.histogram.samples == 1
    assert policy.histogram.counts[0] == 1
    policy.on_idle("a", 30.0)
    policy.on_call(view(queued=1), 35.0)  # calls waiting: the function was not idle
    assert policy.histogram.samples == 1


def test_prewarm_stops_the_instance_and_starts_one_ahead_of_the_next_call() -> None:
    policy = hybrid()
    feed(policy, [630.0] * 20)  # prewarm 540, keep-alive 186
    done = inst("a", served=1, idle_since=1000.0)
    assert policy.decide(view(done), 1000.0) == Decision(stop=("a",), next_check_at=1540.0)
    assert policy.decide(view(done), 1000.0) == Decision(stop=("a",), next_check_at=1540.0)
    assert policy.pending_prewarms == (1540.0,)  # the repeated decide scheduled nothing twice
    assert policy.decide(view(), 1539.0) == Decision(next_check_at=1540.0)
    assert policy.decide(view(), 1540.0) == Decision(start=1)
    warm = inst("p", started_at=1540.0, idle_since=1542.0)  # ready at 1542, never used
    assert policy.decide(view(warm), 1542.0) == Decision(next_check_at=1542.0 + 186.0)
    assert policy.decide(view(warm), 1728.0) == Decision(stop=("p",))


def test_a_call_before_the_prewarm_spends_it() -> None:
    policy = hybrid()
    feed(policy, [630.0] * 20)
    policy.decide(view(inst("a", served=1, idle_since=1000.0)), 1000.0)
    policy.on_call(view(), 1200.0)
    assert policy.pending_prewarms == ()
    assert policy.decide(view(inst("c", busy=1, ready=False)), 1540.0) == Decision()


def test_hybrid_keeps_min_instances_instead_of_unloading_them() -> None:
    policy = hybrid(min_instances=1)
    feed(policy, [630.0] * 20)
    done = inst("a", served=1, idle_since=1000.0)
    assert policy.decide(view(done), 1000.0) == Decision()  # it is the warm one
    assert policy.pending_prewarms == ()
    # Past its pre-warm time it counts as pre-warmed: with another instance
    # alive it goes at the end of its window (1000 + 540 + 186).
    other = inst("b", busy=1)
    assert policy.decide(view(done, other), 1600.0) == Decision(next_check_at=1726.0)
    assert policy.decide(view(done, other), 1726.0) == Decision(stop=("a",))


def test_hybrid_prewarm_respects_max_instances() -> None:
    policy = hybrid(max_instances=1)
    feed(policy, [630.0] * 20)
    policy.decide(view(inst("a", served=1, idle_since=1000.0)), 1000.0)
    assert policy.decide(view(inst("c", busy=1)), 1540.0) == Decision()


def test_hybrid_zero_prewarm_keeps_the_instance_for_the_keep_alive_window() -> None:
    policy = hybrid()
    feed(policy, [30.0] * 20)  # bin 0: head 0, so no unloading; warm until 66 s
    assert policy.windows().prewarm_s == 0.0
    done = inst("a", served=3, idle_since=100.0)
    assert policy.decide(view(done), 100.0) == Decision(next_check_at=166.0)
    assert policy.decide(view(done), 166.0) == Decision(stop=("a",))


def test_hybrid_on_the_fake_pool_pre_warms_a_periodic_function_with_little_idle_time() -> None:
    period, calls = 100.0, 100
    spec = {"histogram_bin_s": 10.0, "histogram_range_s": 2400.0}
    hybrid_pool = FakePool(hybrid(**spec), startup_s=2, exec_s=1)
    keep_pool = FakePool(keep_alive(max_instances=4, keep_alive_s=2400), startup_s=2, exec_s=1)
    arrivals = [5.0 + n * period for n in range(calls)]
    for pool in (hybrid_pool, keep_pool):
        pool.call_at(*arrivals)
    hybrid_stats = hybrid_pool.run(arrivals[-1] + 1)
    keep_stats = keep_pool.run(arrivals[-1] + 1)
    policy = hybrid_pool.policy
    assert isinstance(policy, HybridHistogramPolicy)
    # Idle times are 97 s (after the cold first call) then 99 s: bin 9, so a
    # pre-warm of 0.9 x 90 s.
    assert policy.windows().prewarm_s == pytest.approx(81.0)
    # Only the very first call is cold, for either policy: the fallback keeps the
    # instance until the histogram is representative (the 10th idle time, at the
    # 11th call); from then on it is stopped as each call ends and started 81 s
    # later, ready 2 s after that, 16 s before the next call.
    assert [arrival for arrival, cold in hybrid_pool.calls if cold] == [5.0]
    assert hybrid_stats.cold_starts == keep_stats.cold_starts == 1
    assert hybrid_pool.stops() == [arrival + 1 for arrival in arrivals[10:]]
    assert hybrid_pool.starts()[1:] == [arrival + 1 + 81 for arrival in arrivals[10:-1]]
    assert keep_stats.idle_instance_s == pytest.approx(97 + (calls - 2) * 99)
    assert hybrid_stats.idle_instance_s == pytest.approx(97 + 9 * 99 + (calls - 11) * 16)
    assert hybrid_stats.idle_instance_s < 0.25 * keep_stats.idle_instance_s
