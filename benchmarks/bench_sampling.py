"""Sampling many cgroup memory files at 1 ms and 0.5 ms: faaslab vs SeBS vs the floor.

    python benchmarks/bench_sampling.py [--duration 10] [--counts 1,8,32]
        [--intervals 1,0.5] [--load] [--sebs-max 4] [--sebs-duration 5]

Needs root on a host with cgroup memory accounting: it creates N real memory
cgroups (below its own memory cgroup on v1, at the v2 root otherwise), each
holding a small process that allocated a few MB, and samples their usage
files. Everything it creates is removed at the end.

Three methods, measured in the same run:

- faaslab: one SamplingProcess (worker process, absolute deadlines) for all
  N files; its CPU comes from the worker's /proc/<pid>/stat.
- SeBS: one Python process per container, each spawning ``cat`` through a
  shell per sample, then sleeping ``interval - duration`` (SeBS's
  measureMem.py, rewritten here); CPU from wait4() (includes sh and cat).
  Run for at most --sebs-max containers and --sebs-duration seconds (it
  costs ~2 ms of CPU per sample).
- the pread floor: a tight loop of ``os.pread`` + int() over the same open
  files (no sleeping: the cost of a read alone).
- the timed floor: the least a timed sampler can do in Python: same
  scheduling as our worker, absolute deadlines, a ``select`` sleep per tick,
  N reads, nothing else (no protocol, batching or host). It shows what the
  machine allows (wake-up cost, scheduling hiccups) in the same run.

"Deadlines met" uses one definition for all: deadline k (every interval
from the start) is met when a sample is read within one interval after it.
Targets: >= 99.9 % met at 1 ms for 32 files; >= 100x less CPU per sample
than SeBS; within 5x of the pread floor.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import msgspec

from _common import quiet_logs
from faaslab._aggregate import MemoryAggregate
from faaslab._sampling import SamplingProcess, find_memory_files

HOLDER = """
import sys
block = bytearray({nbytes})
block[::4096] = b"\\x01" * len(range(0, {nbytes}, 4096))
sys.stdin.read()
"""

# SeBS's method: a process per container, a shell `cat` per sample.
SEBS_MEASURER = r"""
import array, os, subprocess, sys, time
path, interval_ms, duration, out_file, times_file = sys.argv[1:6]
interval_ms = float(interval_ms)
end = time.monotonic() + float(duration)
times = array.array("q")
with open(out_file, "a") as f:
    while time.monotonic() < end:
        start = time.perf_counter_ns()
        p = subprocess.Popen(
            f"cat {path}", stdin=subprocess.PIPE, stdout=subprocess.PIPE, shell=True
        )
        f.write(f"container {int(p.communicate()[0].decode())}\n")
        times.append(time.monotonic_ns())
        duration_ns = time.perf_counter_ns() - start
        if duration_ns / 1e6 > interval_ms:
            f.write("precision not met\n")
        time.sleep(max(0, (interval_ms - duration_ns / 1e6) / 1000))
with open(times_file, "wb") as f:
    f.write(times.tobytes())
"""


# The timed floor: the least a timed sampler in Python can do (same scheduling
# as our worker, absolute deadlines, no protocol, no batching, no host).
TIMED_FLOOR = r"""
import json, os, select, sys, time
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
except OSError:
    pass
interval = round(float(sys.argv[1]) * 1e6)
duration = float(sys.argv[2])
fds = [os.open(path, os.O_RDONLY) for path in sys.argv[3:]]
late = total = 0
lateness = []
deadline = (time.monotonic_ns() // interval + 1) * interval
end = deadline + int(duration * 1e9)
cpu0 = time.process_time()
while deadline < end:
    now = time.monotonic_ns()
    if deadline > now:
        select.select([], [], [], (deadline - now) / 1e9)
    for fd in fds:
        read_at = time.monotonic_ns()
        int(os.pread(fd, 64, 0))
        lateness.append(read_at - deadline)
        total += 1
        late += read_at - deadline > interval
    deadline += interval
    behind = time.monotonic_ns() - deadline
    if behind > interval:
        missed = behind // interval + 1
        deadline += missed * interval
        late += missed * len(fds)
        total += missed * len(fds)
cpu = time.process_time() - cpu0
lateness.sort()
print(json.dumps({"met_pct": 100 * (1 - late / total),
                  "lateness_p99_us": lateness[int(0.99 * (len(lateness) - 1))] / 1e3,
                  "cpu_per_1000": 1000 * cpu / (len(lateness))}))
"""


# -- real cgroups -----------------------------------------------------------------


@contextlib.contextmanager
def memory_cgroups(count: int, nbytes: int) -> Iterator[list[str]]:
    """`count` real memory cgroups, each with a process holding `nbytes`."""
    own = find_memory_files(os.getpid())
    parent = Path(own.usage).parent
    usage_name = Path(own.usage).name
    if own.version == 2:
        for _ in [p for p in own.cgroup.split("/") if p]:
            parent = parent.parent
    made: list[tuple[Path, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(count):
            path = parent / f"faaslab-bench-{uuid.uuid4().hex[:10]}"
            path.mkdir()
            holder = subprocess.Popen(
                [sys.executable, "-S", "-c", HOLDER.format(nbytes=nbytes)], stdin=subprocess.PIPE
            )
            made.append((path, holder))
            (path / "cgroup.procs").write_text(str(holder.pid))
        yield [str(path / usage_name) for path, _ in made]
    finally:
        for path, holder in made:
            holder.kill()
            holder.wait()
            if holder.stdin:
                holder.stdin.close()
            with contextlib.suppress(OSError):
                path.rmdir()


class Ours(msgspec.Struct):
    priority: str
    samples: int
    deadlines: int
    met_pct: float
    lateness_p50_us: float
    lateness_p99_us: float
    lateness_max_us: float
    cpu_per_1000: float  # CPU seconds of the worker per 1000 samples
    host_cpu_per_1000: float  # CPU seconds of this process (pump + aggregation)


class Sebs(msgspec.Struct):
    containers: int
    samples: int
    met_pct: float
    precision_not_met: int
    cpu_per_1000: float


class TimedFloor(msgspec.Struct):
    met_pct: float
    lateness_p99_us: float
    cpu_per_1000: float


class Row(msgspec.Struct):
    count: int
    interval_ms: float
    ours: Ours
    sebs: Sebs
    timed_floor: TimedFloor
    floor_cpu_per_1000: float


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[int], q: float) -> int:
    return sorted_values[max(1, math.ceil(q / 100 * len(sorted_values))) - 1]


# -- the three methods ---------------------------------------------------------------


async def run_faaslab(paths: list[str], interval_ms: float, duration: float) -> Ours:
    lateness: list[int] = []
    aggregates = {f"c{i}": MemoryAggregate() for i in range(len(paths))}
    async with anyio.create_task_group() as tg:
        proc = await tg.start(SamplingProcess().run)
        assert proc.pid is not None
        subscriptions = [
            await proc.register(key, path, interval_ms)
            for key, path in zip(aggregates, paths, strict=True)
        ]
        worker_cpu0, host_cpu0 = cpu_seconds(proc.pid), time.process_time()

        async def consume(index: int) -> None:
            subscription = subscriptions[index]
            aggregate = aggregates[subscription.key]
            async for batch in subscription:
                aggregate.add(batch)
                lateness.extend(batch.lateness)

        async with anyio.create_task_group() as consumers:
            for index in range(len(subscriptions)):
                consumers.start_soon(consume, index)
            await anyio.sleep(duration)
            worker_cpu = cpu_seconds(proc.pid) - worker_cpu0
            for key in aggregates:
                await proc.unregister(key)
        host_cpu = time.process_time() - host_cpu0
        priority = proc.priority
        tg.cancel_scope.cancel()
    samples = sum(a.count for a in aggregates.values())
    skipped = sum(a.skipped for a in aggregates.values())
    late = sum(a.late for a in aggregates.values())
    lateness.sort()
    return Ours(
        priority=priority or "?",
        samples=samples,
        deadlines=samples + skipped,
        met_pct=100 * (1 - late / (samples + skipped)),
        lateness_p50_us=percentile(lateness, 50) / 1e3,
        lateness_p99_us=percentile(lateness, 99) / 1e3,
        lateness_max_us=lateness[-1] / 1e3,
        cpu_per_1000=1000 * worker_cpu / samples,
        host_cpu_per_1000=1000 * host_cpu / samples,
    )


def run_sebs(paths: list[str], interval_ms: float, duration: float) -> Sebs:
    interval_ns = round(interval_ms * 1e6)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.monotonic_ns()
        children = []
        for index, path in enumerate(paths):
            times_file = f"{scratch}/times{index}"
            child = subprocess.Popen(
                [sys.executable, "-c", SEBS_MEASURER, path, str(interval_ms), str(duration),
                 f"{scratch}/measurements.txt", times_file]
            )  # fmt: skip
            children.append((child, times_file))
        cpu = 0.0
        met = samples = deadlines = 0
        for child, times_file in children:
            _, _, usage = os.wait4(child.pid, 0)
            child.returncode = 0
            cpu += usage.ru_utime + usage.ru_stime  # the measurer, its shells and cats
            data = Path(times_file).read_bytes()
            times = memoryview(data).cast("q")
            samples += len(times)
            covered = {(t - start) // interval_ns for t in times}
            total = int(duration * 1e9) // interval_ns
            met += len([k for k in covered if k < total])
            deadlines += total
        lines = Path(f"{scratch}/measurements.txt").read_text().splitlines()
    return Sebs(
        containers=len(paths),
        samples=samples,
        met_pct=100 * met / deadlines,
        precision_not_met=sum(1 for line in lines if line == "precision not met"),
        cpu_per_1000=1000 * cpu / samples,
    )


def run_timed_floor(paths: list[str], interval_ms: float, duration: float) -> TimedFloor:
    result = subprocess.run(
        [sys.executable, "-c", TIMED_FLOOR, str(interval_ms), str(duration), *paths],
        check=True,
        capture_output=True,
    )
    return msgspec.json.decode(result.stdout, type=TimedFloor)


def run_floor(paths: list[str], reads: int = 200_000) -> float:
    """CPU seconds per 1000 samples of a bare pread loop."""
    fds = [os.open(path, os.O_RDONLY) for path in paths]
    pread, monotonic_ns = os.pread, time.monotonic_ns
    rounds = max(1, reads // len(fds))
    start = time.process_time()
    for _ in range(rounds):
        for fd in fds:
            monotonic_ns()
            int(pread(fd, 64, 0))
    cpu = time.process_time() - start
    for fd in fds:
        os.close(fd)
    return 1000 * cpu / (rounds * len(fds))


# -- main --------------------------------------------------------------------------------


@contextlib.contextmanager
def cpu_load(enabled: bool) -> Iterator[None]:
    burners = []
    if enabled:
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--counts", default="1,8,32")
    parser.add_argument("--intervals", default="1,0.5")
    parser.add_argument("--load", action="store_true", help="burn both cores meanwhile")
    parser.add_argument("--sebs-max", type=int, default=4, help="containers for SeBS's method")
    parser.add_argument("--sebs-duration", type=float, default=5.0)
    parser.add_argument("--holder-mb", type=float, default=4.0)
    quiet_logs()
    parser.add_argument("--json", action="store_true", help="also print the raw figures")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    intervals = [float(i) for i in args.intervals.split(",")]
    rows: list[Row] = []
    with memory_cgroups(max(counts), int(args.holder_mb * 1024 * 1024)) as paths:
        floor = run_floor(paths)
        print(f"pread floor: {floor * 1e3:.3f} ms CPU per 1000 samples")
        with cpu_load(args.load):
            for interval in intervals:
                sebs_n = min(args.sebs_max, max(counts))
                sebs = run_sebs(paths[:sebs_n], interval, min(args.duration, args.sebs_duration))
                print(
                    f"SeBS method, {sebs_n} containers at {interval} ms: "
                    f"{sebs.met_pct:.1f} % deadlines met, {sebs.samples} samples, "
                    f"{sebs.precision_not_met} 'precision not met', "
                    f"{sebs.cpu_per_1000 * 1e3:.0f} ms CPU per 1000 samples"
                )
                for count in counts:
                    timed = run_timed_floor(paths[:count], interval, args.duration)
                    print(
                        f"timed floor, {count:2d} files at {interval} ms: "
                        f"{timed.met_pct:.3f} % met,"
                        f" lateness p99 {timed.lateness_p99_us:.0f} us,"
                        f" {timed.cpu_per_1000 * 1e3:.2f} ms CPU/1000 samples"
                    )
                    ours = anyio.run(run_faaslab, paths[:count], interval, args.duration)
                    rows.append(Row(count, interval, ours, sebs, timed, floor))
                    print(
                        f"faaslab, {count:2d} files at {interval} ms ({ours.priority}): "
                        f"{ours.met_pct:.3f} % met of {ours.deadlines}, lateness "
                        f"p50 {ours.lateness_p50_us:.0f} / p99 {ours.lateness_p99_us:.0f} / "
                        f"max {ours.lateness_max_us:.0f} us, "
                        f"worker {ours.cpu_per_1000 * 1e3:.2f} ms CPU/1000 samples "
                        f"(host pump+aggregate {ours.host_cpu_per_1000 * 1e3:.2f})"
                    )
    print(
        "\nratios (same run)          met %  timed-floor met %  SeBS met %"
        "  SeBS/ours CPU  ours/pread-floor  ours/timed-floor"
    )
    for row in rows:
        ours_cpu = row.ours.cpu_per_1000
        print(
            f"  {row.count:2d} files at {row.interval_ms:<4} ms {row.ours.met_pct:8.3f}"
            f" {row.timed_floor.met_pct:16.3f} {row.sebs.met_pct:11.1f}"
            f" {row.sebs.cpu_per_1000 / ours_cpu:13.0f}x {ours_cpu / row.floor_cpu_per_1000:16.1f}x"
            f" {ours_cpu / row.timed_floor.cpu_per_1000:16.1f}x"
        )
    for row in rows:
        if row.count == 32 and row.interval_ms == 1.0:
            verdict = "met" if row.ours.met_pct >= 99.9 else "MISSED"
            print(
                f"target >= 99.9 % deadlines met at 1 ms x 32: {row.ours.met_pct:.3f} % ({verdict})"
            )
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(rows)).decode())


if __name__ == "__main__":
    main()
