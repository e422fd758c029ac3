"""The Sampler actor's bookkeeping (no containers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faaslab._aggregate import ProfileWriter
from faaslab._sampling._sampler import Sampler


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[ProfileWriter]:
    with ProfileWriter(tmp_path / "profile") as writer:
        yield writer


def measurement(profile: ProfileWriter, calls: list[Sampler]) -> Sampler:
    return Sampler(
        function="fn",
        instance="fn-0",
        index=0,
        container_id="c" * 64,
        interval_ms=1,
        profile=profile,
        single_call=True,
        on_lagging=calls.append,
    )


def test_lagging_is_reported_at_most_every_ten_seconds(profile: ProfileWriter) -> None:
    calls: list[Sampler] = []
    m = measurement(profile, calls)
    m._report_lagging()
    m._report_lagging()
    assert calls == [m]


def test_window_peak_is_the_largest_sample_inside_the_call(profile: ProfileWriter) -> None:
    m = measurement(profile, [])
    m._take([10, 20, 30, 40], [5, 9, 7, 100])
    assert m.window_peak(15, 35) == 9
    assert m.window_peak(41, 50) is None
    assert m.last_bytes == 100
    record = m.record()
    assert record.source == "cgroup"
    assert record.container_id == "c" * 64
