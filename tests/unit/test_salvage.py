"""What a dead supervisor's checkpoint and profile still tell (no engine)."""

from __future__ import annotations

from pathlib import Path

from faaslab._aggregate import MeasurementRecord, MemoryAggregate, ProfileWriter, salvage

MS = 1_000_000


def record(
    container: str, aggregate: MemoryAggregate, end_reason: str | None = None
) -> MeasurementRecord:
    return MeasurementRecord(
        function="fn",
        instance="fn-0",
        index=0,
        container_id=container,
        source="cgroup",
        interval_ms=1.0,
        snapshot=aggregate.snapshot(),
        end_reason=end_reason,
    )


def test_the_profile_completes_the_checkpoint_and_bounds_the_loss(tmp_path: Path) -> None:
    times = [t * MS for t in range(1, 2001)]  # 2 s of samples at 1 ms
    values = [1000 + t for t in range(2000)]
    path = tmp_path / "memory.profile"
    with ProfileWriter(path) as profile:
        for start in range(0, 2000, 50):  # batches of 50, as the sampling process sends them
            profile.append("c1", times[start : start + 50], values[start : start + 50])
    checkpointed = MemoryAggregate()
    checkpointed.update(values[:1200], times=times[:1200])  # the checkpoint saw 1.2 s of them
    (only,) = salvage(
        [record("c1", checkpointed)],
        path,
        checkpoint_ns=1200 * MS,
        checkpoint_interval_s=1.0,
    )
    full = MemoryAggregate()
    full.update(values, times=times)
    assert only.record.snapshot.count == 2000
    assert only.record.snapshot.total == full.total  # exact: nothing counted twice
    assert only.record.snapshot.maximum == max(values)
    assert only.from_profile == 800
    # It died by checkpoint + 1 s = 2.2 s; the last stored sample is at 2.0 s.
    assert only.lost_at_most == 200


def test_nothing_is_lost_of_a_container_that_ended_before_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "memory.profile"
    with ProfileWriter(path) as profile:
        profile.append("c1", [MS, 2 * MS], [5, 6])
    aggregate = MemoryAggregate()
    aggregate.update([5, 6], times=[MS, 2 * MS])
    (only,) = salvage(
        [record("c1", aggregate, end_reason="cgroup removed")],
        path,
        checkpoint_ns=900 * MS,
        checkpoint_interval_s=1.0,
    )
    assert (only.record.snapshot.count, only.from_profile, only.lost_at_most) == (2, 0, 0)


def test_without_a_profile_the_checkpoint_stands_alone(tmp_path: Path) -> None:
    aggregate = MemoryAggregate()
    aggregate.update([7], times=[MS])
    (only,) = salvage(
        [record("c1", aggregate)], tmp_path / "absent", checkpoint_ns=MS, checkpoint_interval_s=1.0
    )
    assert only.record.snapshot == aggregate.snapshot()
    assert only.lost_at_most == 1000
