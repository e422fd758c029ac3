"""The restart policy: backoff after each death, and when a position is given up."""

from __future__ import annotations

import pytest

from faaslab._deployment._restart import FIRST_BACKOFF_S, MAX_BACKOFF_S, after_death


def test_first_death_restarts_after_the_first_backoff() -> None:
    decision = after_death((), 100.0, max_restarts=3, window_s=60.0)
    assert decision.recent == (100.0,)
    assert decision.backoff_s == FIRST_BACKOFF_S
    assert not decision.give_up


def test_backoff_doubles_per_recent_death_and_is_capped() -> None:
    deaths: tuple[float, ...] = ()
    backoffs = []
    for now in range(1, 11):
        decision = after_death(deaths, float(now), max_restarts=100, window_s=1000.0)
        deaths = decision.recent
        backoffs.append(decision.backoff_s)
    assert backoffs[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert backoffs[-1] == MAX_BACKOFF_S
    assert all(b <= MAX_BACKOFF_S for b in backoffs)
    assert backoffs == sorted(backoffs)


def test_more_deaths_than_allowed_within_the_window_give_up() -> None:
    deaths = (10.0, 20.0, 30.0)
    decision = after_death(deaths, 40.0, max_restarts=3, window_s=60.0)
    assert decision.give_up
    assert decision.recent == (10.0, 20.0, 30.0, 40.0)


def test_deaths_older_than_the_window_are_forgotten() -> None:
    deaths = (10.0, 20.0, 30.0)
    decision = after_death(deaths, 85.0, max_restarts=3, window_s=60.0)
    assert not decision.give_up
    assert decision.recent == (30.0, 85.0)
    # Two recent deaths: the second step of the backoff, not the fourth.
    assert decision.backoff_s == pytest.approx(2 * FIRST_BACKOFF_S)


def test_a_death_exactly_at_the_window_edge_still_counts() -> None:
    decision = after_death((0.0,), 60.0, max_restarts=1, window_s=60.0)
    assert decision.give_up


def test_zero_restarts_allowed_gives_up_at_the_first_death() -> None:
    assert after_death((), 5.0, max_restarts=0, window_s=60.0).give_up
