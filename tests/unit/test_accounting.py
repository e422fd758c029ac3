"""Pool counters from events (no I/O): exact on hand-computed timelines."""

from __future__ import annotations

import pytest

from faaslab._deployment._accounting import PoolAccounting, PoolStatistics, alive_at


def test_a_hand_computed_timeline() -> None:
    acct = PoolAccounting()
    acct.instance_started("a", 0.0)
    acct.call_started("a", 1.0)  # waits for a: a cold start
    acct.instance_ready("a", 2.0)
    acct.call_finished("a", 5.0)
    acct.instance_started("b", 10.0)  # ahead of demand (a pre-warm)
    acct.instance_ready("b", 12.0)
    acct.call_started("b", 20.0)  # warm
    acct.call_finished("b", 21.0)
    acct.instance_stopped("a", 30.0)
    stats = acct.statistics(40.0)
    # a: starting 0-2, busy 2-5, idle 5-30; b: starting 10-12, idle 12-20,
    # busy 20-21, idle 21-40 (still alive).
    assert stats == PoolStatistics(
        starts=2,
        cold_starts=1,
        cold_calls=1,
        stops=1,
        alive=1,
        max_alive=2,
        alive_timeline=((0.0, 1), (10.0, 2), (30.0, 1)),
        starting_instance_s=4.0,
        busy_instance_s=4.0,
        idle_instance_s=25.0 + 8.0 + 19.0,
    )
    assert stats.idle_memory_mb_s(128) == 52.0 * 128
    assert alive_at(stats.alive_timeline, -1.0) == 0
    assert alive_at(stats.alive_timeline, 10.0) == 2
    assert alive_at(stats.alive_timeline, 29.9) == 2
    assert alive_at(stats.alive_timeline, 30.0) == 1


def test_concurrent_calls_keep_an_instance_busy_until_the_last_ends() -> None:
    acct = PoolAccounting()
    acct.instance_started("a", 0.0)
    acct.instance_ready("a", 1.0)
    acct.call_started("a", 2.0)
    acct.call_started("a", 3.0)
    acct.call_finished("a", 4.0)
    acct.call_finished("a", 6.0)
    stats = acct.statistics(10.0)
    assert stats.busy_instance_s == 4.0
    assert stats.idle_instance_s == 1.0 + 4.0
    assert stats.cold_starts == 0


def test_several_calls_waiting_on_one_start_are_one_cold_start() -> None:
    acct = PoolAccounting()
    acct.instance_started("a", 0.0)
    acct.call_started("a", 0.0)
    acct.call_started("a", 0.5)
    acct.instance_ready("a", 1.0)
    assert acct.statistics(1.0).cold_starts == 1
    assert acct.statistics(1.0).cold_calls == 2  # both waited for it


def test_changes_at_the_same_time_make_one_point() -> None:
    acct = PoolAccounting()
    for name in "abc":
        acct.instance_started(name, 0.0)
    acct.instance_stopped("b", 5.0)
    acct.instance_started("d", 5.0)
    acct.instance_stopped("a", 5.0)
    stats = acct.statistics(5.0)
    assert stats.alive_timeline == ((0.0, 3), (5.0, 2))
    assert stats.max_alive == 3


def test_statistics_are_a_snapshot_and_leave_the_accounting_going() -> None:
    acct = PoolAccounting()
    acct.instance_started("a", 0.0)
    acct.instance_ready("a", 0.0)
    first = acct.statistics(10.0)
    assert first.idle_instance_s == 10.0
    assert acct.statistics(10.0) == first
    acct.call_started("a", 20.0)
    acct.call_finished("a", 25.0)
    acct.instance_stopped("a", 30.0)
    later = acct.statistics(100.0)
    assert (later.idle_instance_s, later.busy_instance_s) == (25.0, 5.0)
    assert later.alive == 0


def test_a_lost_instance_closes_its_calls() -> None:
    acct = PoolAccounting()
    acct.instance_started("a", 0.0)
    acct.instance_ready("a", 1.0)
    acct.call_started("a", 2.0)
    acct.instance_stopped("a", 3.0)
    stats = acct.statistics(50.0)
    assert (stats.busy_instance_s, stats.idle_instance_s, stats.alive) == (1.0, 1.0, 0)


def test_events_out_of_order_or_about_unknown_instances_are_refused() -> None:
    acct = PoolAccounting()
    acct.instance_started("a", 5.0)
    with pytest.raises(ValueError, match=r"before the previous one at 5\.0"):
        acct.instance_ready("a", 4.0)
    with pytest.raises(ValueError, match="'a' is already alive"):
        acct.instance_started("a", 5.0)
    with pytest.raises(ValueError, match="'b' is not alive"):
        acct.call_started("b", 6.0)
    with pytest.raises(ValueError, match="'a' has no call in flight"):
        acct.call_finished("a", 6.0)
    with pytest.raises(ValueError, match=r"now 1\.0 is before the last event"):
        acct.statistics(1.0)
