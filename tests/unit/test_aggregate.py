"""Streaming aggregation, the profile file and the reports (pure, no kernel)."""

from __future__ import annotations

import json
import math
import random
import tracemalloc
from array import array
from pathlib import Path

import msgspec
import pytest

from faaslab._aggregate import (
    RELATIVE_ERROR,
    LogHistogram,
    MemoryAggregate,
    MemoryAggregateSnapshot,
    MemoryReport,
    ProfileReader,
    ProfileWriter,
    instance_memory,
    read_memory_report,
    sebs_megabytes,
    write_memory_report,
    write_sebs_memory_stats,
)
from faaslab._aggregate._histogram import bucket_midpoint, bucket_of

SEBS_KEYS = [
    "mean mem. usage",
    "max mem. usage",
    "number of measurements",
    "full profile (in bytes)",
]


def nearest_rank(sorted_values: list[int], q: float) -> int:
    return sorted_values[max(1, math.ceil(q / 100 * len(sorted_values))) - 1]


def memory_like(rng: random.Random, n: int) -> list[int]:
    """Values spread over six orders of magnitude, page-aligned like cgroup figures."""
    return [int(10 ** rng.uniform(3, 9.5)) // 4096 * 4096 for _ in range(n)]


# -- histogram -------------------------------------------------------------------


def test_buckets_sort_like_values_and_bound_the_error() -> None:
    rng = random.Random(1)
    values = sorted({rng.randrange(0, 2**62) >> rng.randrange(0, 62) for _ in range(20_000)})
    keys = [bucket_of(v) for v in values]
    assert keys == sorted(keys)
    for value in values:
        midpoint = bucket_midpoint(bucket_of(value))
        assert abs(midpoint - value) <= value * RELATIVE_ERROR
    assert all(bucket_midpoint(bucket_of(v)) == v for v in range(256))  # exact below 256
    assert RELATIVE_ERROR <= 0.005


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_histogram_percentiles_within_the_stated_error(seed: int) -> None:
    rng = random.Random(seed)
    values = memory_like(rng, 50_000)
    histogram = LogHistogram()
    for start in range(0, len(values), 300):
        histogram.add_many(values[start : start + 300])
    exact = sorted(values)
    for q in (0, 1, 25, 50, 90, 95, 99, 99.9, 100):
        estimate = histogram.percentile(q)
        assert estimate is not None
        truth = nearest_rank(exact, q)
        assert abs(estimate - truth) <= truth * RELATIVE_ERROR, (q, estimate, truth)
    assert histogram.percentile(0) == exact[0]
    assert histogram.percentile(100) == exact[-1]


def test_histogram_edge_cases() -> None:
    histogram = LogHistogram()
    assert histogram.percentile(50) is None
    histogram.add_many([])
    histogram.add_many([-5, 0, 7])  # negative lateness (clock quirks) counts as 0
    assert histogram.count == 3
    assert histogram.percentile(100) == 7
    with pytest.raises(ValueError, match="percentile"):
        histogram.percentile(101)


# -- MemoryAggregate -----------------------------------------------------------------


def feed(aggregate: MemoryAggregate, values: list[int], lateness: list[int], batch: int) -> None:
    for start in range(0, len(values), batch):
        chunk = values[start : start + batch]
        aggregate.update(
            chunk,
            times=[1_000 + i for i in range(start, start + len(chunk))],
            lateness=lateness[start : start + batch],
            late=1,
            skipped=(start // batch) % 2,
        )


def test_aggregate_is_exact_where_it_can_be_and_bounded_elsewhere() -> None:
    rng = random.Random(7)
    values = memory_like(rng, 30_000)
    lateness = [int(rng.expovariate(1 / 40_000)) for _ in values]
    aggregate = MemoryAggregate()
    feed(aggregate, values, lateness, batch=256)
    assert aggregate.count == len(values)
    assert aggregate.total == sum(values)
    assert aggregate.mean == sum(values) / len(values)
    assert aggregate.minimum == min(values)
    assert aggregate.maximum == max(values)
    assert aggregate.first_ns == 1_000
    assert aggregate.last_ns == 1_000 + len(values) - 1
    batches = math.ceil(len(values) / 256)
    assert aggregate.late == batches
    assert aggregate.skipped == batches // 2
    exact, exact_lateness = sorted(values), sorted(lateness)
    for q in (50, 95, 99):
        truth = nearest_rank(exact, q)
        estimate = aggregate.percentile(q)
        assert estimate is not None
        assert abs(estimate - truth) <= truth * RELATIVE_ERROR
        late_truth = nearest_rank(exact_lateness, q)
        late_estimate = aggregate.lateness_percentile(q)
        assert late_estimate is not None
        assert abs(late_estimate - late_truth) <= late_truth * RELATIVE_ERROR
    assert aggregate.lateness_max == max(lateness)


def test_batch_boundaries_do_not_matter() -> None:
    rng = random.Random(8)
    values = memory_like(rng, 5_000)
    lateness = [rng.randrange(0, 10**6) for _ in values]
    one, many = MemoryAggregate(), MemoryAggregate()
    one.update(values, lateness=lateness)
    for start in range(0, len(values), 17):
        many.update(values[start : start + 17], lateness=lateness[start : start + 17])
    assert one.snapshot() == many.snapshot()


def test_add_takes_a_sample_batch() -> None:
    from faaslab._sampling import SampleBatch

    batch = SampleBatch(
        key="k",
        times=array("q", [10, 20]),
        values=array("q", [4096, 8192]),
        lateness=array("q", [3, 5]),
        late=1,
        skipped=1,
    )
    aggregate = MemoryAggregate()
    aggregate.add(batch)
    assert (aggregate.count, aggregate.maximum, aggregate.late, aggregate.skipped) == (
        2,
        8192,
        1,
        1,
    )
    assert (aggregate.first_ns, aggregate.last_ns) == (10, 20)


def test_snapshot_roundtrips_through_json_and_msgpack_and_resumes() -> None:
    rng = random.Random(9)
    values = memory_like(rng, 4_000)
    lateness = [rng.randrange(0, 5 * 10**6) for _ in values]
    whole = MemoryAggregate()
    feed(whole, values, lateness, batch=100)
    part = MemoryAggregate()
    feed(part, values[:2_000], lateness[:2_000], batch=100)
    snapshot = part.snapshot()
    for encoded in (msgspec.json.encode(snapshot), msgspec.msgpack.encode(snapshot)):
        decoder = msgspec.json if encoded[:1] == b"{" else msgspec.msgpack
        decoded = decoder.decode(encoded, type=MemoryAggregateSnapshot)
        assert decoded == snapshot
    restored = MemoryAggregate.from_snapshot(
        msgspec.json.decode(msgspec.json.encode(snapshot), type=MemoryAggregateSnapshot)
    )
    assert restored.snapshot() == snapshot
    # A restored aggregate continues as if it had never stopped (first_ns kept).
    for start in range(2_000, 4_000, 100):
        restored.update(
            values[start : start + 100],
            times=list(range(1_000 + start, 1_000 + start + 100)),
            lateness=lateness[start : start + 100],
            late=1,
            skipped=(start // 100) % 2,
        )
    assert restored.snapshot() == whole.snapshot()


def test_empty_snapshot() -> None:
    snapshot = MemoryAggregate().snapshot()
    assert (snapshot.count, snapshot.mean, snapshot.p99, snapshot.maximum) == (0, None, None, None)
    assert MemoryAggregate.from_snapshot(snapshot).snapshot() == snapshot


def test_snapshot_decodes_from_an_older_writer_without_new_fields() -> None:
    # Schema evolution: every field past version has a default.
    decoded = msgspec.json.decode(
        b'{"version": 1, "count": 2, "total": 10}', type=MemoryAggregateSnapshot
    )
    assert (decoded.count, decoded.total, decoded.value_buckets) == (2, 10, ())


# -- profile file -------------------------------------------------------------------------


def write_profile(path: Path, samples: dict[str, list[int]], batch: int = 50) -> None:
    with ProfileWriter(path) as writer:
        longest = max(len(v) for v in samples.values())
        for start in range(0, longest, batch):  # interleaved, as batches arrive
            for key, values in samples.items():
                chunk = values[start : start + batch]
                writer.append(key, [start + i for i in range(len(chunk))], chunk)


def test_profile_roundtrip_per_key(tmp_path: Path) -> None:
    rng = random.Random(10)
    samples = {"a" * 64: memory_like(rng, 1_234), "b": memory_like(rng, 77), "é/0": [1, 2]}
    path = tmp_path / "profile.bin"
    write_profile(path, samples)
    reader = ProfileReader(path)
    assert reader.keys() == list(samples)
    for key, values in samples.items():
        assert reader.count(key) == len(values)
        assert [v for chunk in reader.values(key) for v in chunk] == values
    assert reader.count("absent") == 0
    chunks = list(reader.chunks())
    assert sum(len(c.values) for c in chunks) == sum(len(v) for v in samples.values())
    assert chunks[0].times.tolist() == list(range(50))


def test_profile_survives_a_torn_tail_and_continues(tmp_path: Path) -> None:
    path = tmp_path / "profile.bin"
    write_profile(path, {"a": list(range(100)), "b": list(range(100, 150))})
    whole = path.stat().st_size
    with open(path, "ab") as file:  # a crash in the middle of a record
        file.write(b"S\x00\x00\x00\x00\x10\x00\x00\x00" + b"\x01" * 20)
    reader = ProfileReader(path)
    assert reader.count("a") == 100
    assert reader.valid_length() == whole
    with ProfileWriter(path) as writer:  # reopening cuts the torn record off
        writer.append("b", [1], [999])
        writer.append("c", [2], [5])
    reader = ProfileReader(path)
    assert reader.keys() == ["a", "b", "c"]
    assert [v for chunk in reader.values("b") for v in chunk][-1] == 999
    assert reader.count("c") == 1


def test_profile_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "not-a-profile"
    path.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not a faaslab profile"):
        ProfileReader(path)


def test_profile_rejects_unequal_lengths(tmp_path: Path) -> None:
    with ProfileWriter(tmp_path / "p") as writer, pytest.raises(ValueError, match="times"):
        writer.append("a", [1, 2], [3])


# -- SeBS memory statistics ----------------------------------------------------------------


def aggregate_of(values: list[int]) -> MemoryAggregateSnapshot:
    aggregate = MemoryAggregate()
    aggregate.update(values)
    return aggregate.snapshot()


def test_sebs_memory_stats_shape_and_content(tmp_path: Path) -> None:
    rng = random.Random(11)
    first, second = "f" * 64, "0123456789abcdef" * 4
    samples = {first: memory_like(rng, 1_000), second: memory_like(rng, 3)}
    profile = tmp_path / "profile.bin"
    write_profile(profile, samples, batch=256)
    out = tmp_path / "memory_stats.json"
    instances = [(cid, aggregate_of(values)) for cid, values in samples.items()]
    write_sebs_memory_stats(out, instances, ProfileReader(profile), precision_errors=17)
    stats = json.loads(out.read_text())
    assert list(stats) == [first, second, "precision_errors"]
    assert stats["precision_errors"] == 17
    for cid, values in samples.items():
        entry = stats[cid]
        assert list(entry) == SEBS_KEYS
        assert entry["full profile (in bytes)"] == values
        assert entry["number of measurements"] == len(values)
        assert entry["mean mem. usage"] == f"{round(sum(values) / len(values) / 1e6, 6)} MB"
        assert entry["max mem. usage"] == f"{round(max(values) / 1e6, 6)} MB"
        assert float(entry["max mem. usage"].removesuffix(" MB")) == pytest.approx(
            max(values) / 1e6, abs=1e-6
        )


def test_sebs_memory_stats_with_profile_keys_and_an_empty_instance(tmp_path: Path) -> None:
    profile = tmp_path / "profile.bin"
    write_profile(profile, {"fn/0": [4096, 8192]})
    out = tmp_path / "stats.json"
    instances = [("c1", aggregate_of([4096, 8192])), ("c2", MemoryAggregate().snapshot())]
    write_sebs_memory_stats(
        out, instances, ProfileReader(profile), 0, profile_keys={"c1": "fn/0", "c2": "fn/1"}
    )
    stats = json.loads(out.read_text())
    assert stats["c1"]["full profile (in bytes)"] == [4096, 8192]
    assert stats["c1"]["mean mem. usage"] == "0.006144 MB"
    assert stats["c2"] == {
        "mean mem. usage": "0.0 MB",
        "max mem. usage": "0.0 MB",
        "number of measurements": 0,
        "full profile (in bytes)": [],
    }
    assert stats["precision_errors"] == 0


def test_sebs_megabytes() -> None:
    assert sebs_megabytes(12_345_678_901) == "12345.678901 MB"
    assert sebs_megabytes(1_000_000) == "1.0 MB"
    assert sebs_megabytes(1) == "1e-06 MB"  # still a float SeBS readers parse
    assert sebs_megabytes(None) == "0.0 MB"


def test_streaming_millions_of_samples_keeps_memory_flat(tmp_path: Path) -> None:
    n = 2_000_000  # tracemalloc slows int allocation ~40x: keep the test ~7 s
    profile = tmp_path / "profile.bin"
    chunk = array("q", range(100_000_000, 100_000_000 + 256 * 4096, 4096))
    times = array("q", range(256))
    with ProfileWriter(profile) as writer:
        for _ in range(n // 256):
            writer.append("c" * 64, times, chunk)
    written = n // 256 * 256
    snapshot = aggregate_of(list(chunk))  # figures are irrelevant here
    out = tmp_path / "stats.json"
    tracemalloc.start()
    try:
        write_sebs_memory_stats(out, [("c" * 64, snapshot)], ProfileReader(profile), 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The profile as a list of ints would take > 100 MB; streaming stays near
    # the 1 MiB read buffer.
    assert peak < 4 * 1024 * 1024, peak
    with open(out) as file:
        stats = json.load(file)
    values = stats["c" * 64]["full profile (in bytes)"]
    assert len(values) == written == stats["c" * 64]["number of measurements"]
    assert values[:256] == chunk.tolist()
    assert values[-1] == chunk[-1]


# -- typed report --------------------------------------------------------------------------


def test_memory_report_roundtrip(tmp_path: Path) -> None:
    aggregate = MemoryAggregate()
    aggregate.update(
        [4096, 8192, 12288], times=[1, 2, 3], lateness=[1_000, 2_000, 900_000], late=2, skipped=1
    )
    entry = instance_memory(
        aggregate.snapshot(),
        function="thumbnailer",
        instance=0,
        container_id="c" * 64,
        interval_ms=1.0,
        cgroup_layout="v1-cgroupfs",
        usage_file="/sys/fs/cgroup/memory/docker/ccc/memory.usage_in_bytes",
        kernel_peak_bytes=16384,
        end_reason="cgroup removed",
    )
    assert (entry.samples, entry.precision_errors, entry.skipped_deadlines) == (3, 2, 1)
    assert (entry.min_bytes, entry.max_bytes, entry.mean_bytes) == (4096, 12288, 8192.0)
    assert entry.lateness_max_us == 900.0
    assert entry.source == "cgroup"
    assert "page cache" in entry.figure
    report = MemoryReport(
        deployment="d-1",
        sampler_priority="SCHED_FIFO 20",
        complete=False,
        incomplete_reason="supervisor died",
        incomplete_time="2026-01-01T00:00:00+00:00",
        instances=(entry,),
    )
    path = tmp_path / "memory_report.json"
    write_memory_report(path, report)
    text = path.read_text()
    assert text.startswith('{\n  "version": 1,')
    assert read_memory_report(path) == report
    assert json.loads(text)["instances"][0]["kernel_peak_bytes"] == 16384
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file is gone
