"""The crash policy: which ends count, the CrashLoopBackOff-like backoff, the user's bound."""

from __future__ import annotations

import pytest

from faaslab._deployment._restart import (
    CrashHistory,
    RestartPolicy,
    after_death,
    cause_of,
)

POLICY = RestartPolicy()


@pytest.mark.parametrize(
    ("retired", "during", "code", "oom", "cause"),
    [
        (True, True, 137, False, "retired"),  # faaslab's own retirement wins
        (True, False, 0, False, "retired"),
        (False, True, 137, True, "invocation"),  # OOM during a call
        (False, True, 3, False, "invocation"),  # os._exit(3) during a call
        (False, True, 0, False, "invocation"),
        (False, False, 0, False, "stopped"),  # SIGTERM answered by the runtime
        (False, False, 143, False, "stopped"),  # SIGTERM unhandled
        (False, False, 1, False, "crash"),
        (False, False, 137, True, "crash"),  # OOM while idle (a leaking thread)
        (False, False, 139, False, "crash"),  # SIGSEGV while idle
        (False, False, 0, True, "crash"),
    ],
)
def test_causes(retired: bool, during: bool, code: int, oom: bool, cause: str) -> None:
    assert (
        cause_of(retired=retired, during_invocation=during, exit_code=code, oom_killed=oom)
        == cause
    )


def test_deaths_during_invocations_never_count_and_replace_at_once() -> None:
    history = CrashHistory()
    bounded = RestartPolicy(max_restarts=0)
    for now in range(100):
        decision = after_death(history, float(now), "invocation", bounded)
        assert decision.backoff_s == 0.0
        assert not decision.give_up
        assert decision.history == history  # nothing recorded


def test_retired_and_stopped_never_count() -> None:
    bounded = RestartPolicy(max_restarts=0)
    retired = after_death(CrashHistory(), 1.0, "retired", bounded)
    assert (retired.backoff_s, retired.give_up, retired.history) == (0.0, False, CrashHistory())
    stopped = after_death(CrashHistory(), 1.0, "stopped", bounded)
    assert stopped.backoff_s == bounded.initial_backoff_s
    assert not stopped.give_up
    assert stopped.history == CrashHistory()


def test_engine_errors_back_off_but_never_count_towards_the_bound() -> None:
    bounded = RestartPolicy(max_restarts=0)
    history = CrashHistory()
    backoffs = []
    for now in (0.0, 1.0, 3.0, 7.0):
        decision = after_death(history, now, "engine", bounded)
        assert not decision.give_up
        history = decision.history
        backoffs.append(decision.backoff_s)
    assert backoffs == [1.0, 2.0, 4.0, 8.0]  # a persisting engine error is not retried at 1 Hz
    assert history.recent == ()


def test_crashes_back_off_doubling_up_to_the_cap() -> None:
    history = CrashHistory()
    backoffs = []
    now = 0.0
    for _ in range(10):
        decision = after_death(history, now, "crash", POLICY)
        history = decision.history
        backoffs.append(decision.backoff_s)
        now += decision.backoff_s + 0.5  # the replacement crashes half a second after start
    assert backoffs[:6] == pytest.approx([1.0, 2.0, 4.0, 8.0, 16.0, 30.0])
    assert backoffs[6:] == [30.0] * 4
    assert not any(after_death(history, now, "crash", POLICY).give_up for _ in range(3))


def test_a_crash_free_minute_starts_the_backoff_over() -> None:
    history = CrashHistory(streak=5, last=100.0)
    soon = after_death(history, 100.0 + POLICY.reset_after_s, "crash", POLICY)
    assert soon.backoff_s == POLICY.max_backoff_s  # 6th in a row: capped
    later = after_death(history, 100.0 + POLICY.reset_after_s + 0.1, "crash", POLICY)
    assert later.backoff_s == POLICY.initial_backoff_s
    assert later.history.streak == 1


def test_never_given_up_without_a_user_bound() -> None:
    history = CrashHistory()
    for now in range(1000):
        decision = after_death(history, float(now), "crash", POLICY)
        assert not decision.give_up
        history = decision.history
    assert history.recent == ()  # no window kept when there is no bound


def test_a_user_bound_gives_up_past_max_restarts_within_the_window() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=60.0)
    history = CrashHistory()
    decisions = []
    for now in (10.0, 20.0, 30.0, 40.0):
        decision = after_death(history, now, "crash", policy)
        history = decision.history
        decisions.append(decision.give_up)
    assert decisions == [False, False, False, True]
    assert history.recent == (10.0, 20.0, 30.0, 40.0)


def test_crashes_older_than_the_window_are_forgotten_for_the_bound() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=60.0)
    history = CrashHistory(streak=3, last=30.0, recent=(10.0, 20.0, 30.0))
    decision = after_death(history, 85.0, "crash", policy)
    assert not decision.give_up
    assert decision.history.recent == (30.0, 85.0)


def test_a_crash_exactly_at_the_window_edge_still_counts() -> None:
    policy = RestartPolicy(max_restarts=1, window_s=60.0)
    history = CrashHistory(streak=1, last=0.0, recent=(0.0,))
    assert after_death(history, 60.0, "crash", policy).give_up


def test_zero_restarts_allowed_gives_up_at_the_first_crash() -> None:
    assert after_death(CrashHistory(), 5.0, "crash", RestartPolicy(max_restarts=0)).give_up


def test_invocation_deaths_between_crashes_leave_the_streak_alone() -> None:
    history = after_death(CrashHistory(), 0.0, "crash", POLICY).history
    history = after_death(history, 1.0, "invocation", POLICY).history
    assert after_death(history, 2.0, "crash", POLICY).backoff_s == 2 * POLICY.initial_backoff_s
