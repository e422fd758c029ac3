"""The sampling process and its client, against real kernel files (no Docker).

Real memory cgroups are made below our own memory cgroup (v1) or at the v2
root, when we may (root); tests that need one are skipped otherwise. Timing
tests sample real cgroup files at the kernel's pace; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest

from faaslab._errors import SamplingError
from faaslab._sampling import (
    PeakWatermark,
    SampleBatch,
    SampleSubscription,
    SamplingProcess,
    find_memory_files,
    read_kernel_peak,
    reset_peak,
)
from faaslab._sampling._protocol import (
    Batch,
    Ended,
    FrameReader,
    Hello,
    HostCommand,
    Refused,
    Register,
    Registered,
    Shutdown,
    Unregister,
    WorkerEvent,
    decode_command,
    decode_event,
    encode_frame,
    pack_int64,
    unpack_int64,
)

pytestmark = pytest.mark.anyio

MB = 1024 * 1024
ALLOCATOR = """
import mmap, sys
held = []
for line in sys.stdin:
    n = int(line)
    if n == 0:  # free everything (munmap: malloc would keep it in its heap)
        for block in held:
            block.close()
        held.clear()
    else:
        block = mmap.mmap(-1, n)
        block[::4096] = b"\\x01" * len(range(0, n, 4096))  # touch every page
        held.append(block)
    print("ok", flush=True)
"""


# -- fixtures: real cgroups and processes -------------------------------------------


def _cgroup_parent() -> tuple[Path, str] | None:
    """Where we may create memory cgroups, and the usage file's name there."""
    try:
        own = find_memory_files(os.getpid())
    except SamplingError:
        return None
    directory = Path(own.usage).parent
    if own.version == 1:
        return directory, "memory.usage_in_bytes"
    root = directory
    for _ in [p for p in own.cgroup.split("/") if p]:
        root = root.parent  # v2: only the root may hold processes beside children
    return root, "memory.current"


class MemoryCgroup:
    """A real memory cgroup of our own, with an allocating process inside."""

    def __init__(self, path: Path, usage_name: str) -> None:
        self.path = path
        self.usage = str(path / usage_name)
        self.peak = str(
            path / ("memory.max_usage_in_bytes" if "usage" in usage_name else "memory.peak")
        )
        self.process: subprocess.Popen[str] | None = None

    def start_allocator(self) -> None:
        process = subprocess.Popen(
            [sys.executable, "-c", ALLOCATOR],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.process = process
        (self.path / "cgroup.procs").write_text(str(process.pid))

    def allocate(self, nbytes: int) -> None:
        """Ask the process to allocate (0: free everything) and wait until it has."""
        assert self.process is not None
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{nbytes}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "ok\n"

    def stop_allocator(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()
            self.process = None

    def remove(self) -> None:
        self.stop_allocator()
        with contextlib.suppress(FileNotFoundError):
            self.path.rmdir()


@pytest.fixture
def memory_cgroup() -> Iterator[Callable[[], MemoryCgroup]]:
    """Factory of real memory cgroups; all are removed at the end."""
    made: list[MemoryCgroup] = []

    def make() -> MemoryCgroup:
        where = _cgroup_parent()
        if where is None:
            pytest.skip("no cgroup memory accounting here")
        parent, usage_name = where
        path = parent / f"faaslab-test-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
        except OSError as exc:
            pytest.skip(f"cannot create a memory cgroup under {parent}: {exc}")
        cgroup = MemoryCgroup(path, usage_name)
        made.append(cgroup)
        if not Path(cgroup.usage).exists():
            pytest.skip(f"{path} has no {usage_name} (memory controller not enabled)")
        return cgroup

    yield make
    for cgroup in made:
        cgroup.remove()


@pytest.fixture
def usage_file() -> str:
    """A real, live cgroup memory file: our own cgroup's."""
    try:
        return find_memory_files(os.getpid()).usage
    except SamplingError as exc:
        pytest.skip(f"no cgroup memory file for this process: {exc}")


@pytest.fixture
async def sampler() -> AsyncIterator[SamplingProcess]:
    async with anyio.create_task_group() as tg:
        proc = await tg.start(SamplingProcess().run)
        yield proc
        tg.cancel_scope.cancel()


async def consume(
    subscription: SampleSubscription,
    *,
    stop_when: Callable[[list[SampleBatch]], bool] = lambda batches: False,
    on_stop: Callable[[], object] | None = None,
) -> list[SampleBatch]:
    """Every batch until the subscription ends; calls `on_stop` (once) when
    `stop_when` first holds."""
    batches: list[SampleBatch] = []
    stopped = False
    async for batch in subscription:
        batches.append(batch)
        if not stopped and stop_when(batches):
            stopped = True
            if on_stop is not None:
                result = on_stop()
                if inspect.isawaitable(result):
                    await result
    return batches


def flat(batches: list[SampleBatch], field: str) -> list[int]:
    return [v for b in batches for v in getattr(b, field)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- protocol --------------------------------------------------------------------------


def test_frames_roundtrip_across_arbitrary_chunking() -> None:
    events: list[WorkerEvent] = [
        Hello(pid=1, priority="normal"),
        Registered(key="k", t0_ns=5),
        Refused(key="k2", error="nope"),
        Batch(key="k", times=pack_int64(unpack_int64(b"")), values=b"", lateness=b"", late=0),
        Ended(key="k", reason="cgroup removed", samples=3, late=1, skipped=1),
    ]
    stream = b"".join(encode_frame(e) for e in events)
    for step in (1, 3, 7, len(stream)):
        reader = FrameReader()
        decoded = [
            decode_event(body)
            for start in range(0, len(stream), step)
            for body in reader.feed(stream[start : start + step])
        ]
        assert decoded == events
        assert reader.pending == 0
    commands: list[HostCommand] = [
        Register(key="a", path="/x", interval_ns=500_000),
        Unregister(key="a"),
        Shutdown(),
    ]
    reader = FrameReader()
    bodies = reader.feed(b"".join(encode_frame(c) for c in commands))
    assert [decode_command(b) for b in bodies] == commands


def test_corrupt_stream_is_detected() -> None:
    with pytest.raises(ValueError, match="corrupt"):
        FrameReader().feed(b"\xff\xff\xff\xff" + b"x" * 8)


# -- the worker process -------------------------------------------------------------------


def test_worker_exits_when_its_stdin_closes() -> None:
    """The parent died: the worker must not linger."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "faaslab._sampling._worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert worker.stdout is not None
    assert worker.stdin is not None
    reader = FrameReader()
    bodies: list[bytes] = []
    while not bodies:
        bodies = reader.feed(os.read(worker.stdout.fileno(), 4096))
    hello = decode_event(bodies[0])
    assert isinstance(hello, Hello)
    assert hello.pid == worker.pid
    worker.stdin.close()
    assert worker.wait(timeout=10) == 0
    worker.stdout.close()


async def test_hello_says_which_scheduling_it_got(sampler: SamplingProcess) -> None:
    assert sampler.priority is not None
    assert sampler.priority == "normal" or sampler.priority.startswith(("SCHED_FIFO", "nice"))
    if os.geteuid() == 0:
        assert sampler.priority.startswith("SCHED_FIFO")
    assert sampler.pid is not None
    assert Path(f"/proc/{sampler.pid}").exists()


async def test_one_ms_for_a_second_absolute_deadlines_no_drift(
    sampler: SamplingProcess, usage_file: str
) -> None:
    interval = 1_000_000
    subscription = await sampler.register("me", usage_file, interval_ms=1.0)
    assert subscription.t0_ns is not None
    t0 = subscription.t0_ns

    def a_second_passed(batches: list[SampleBatch]) -> bool:
        return batches[-1].times[-1] - t0 >= 1_000_000_000 if batches[-1].times else False

    with anyio.fail_after(20):
        batches = await consume(
            subscription, stop_when=a_second_passed, on_stop=lambda: sampler.unregister("me")
        )
    end = subscription.end
    assert end is not None
    assert end.reason == "unregistered"
    times, lateness = flat(batches, "times"), flat(batches, "lateness")
    assert end.samples == len(times)
    deadlines = [t - late for t, late in zip(times, lateness, strict=True)]
    # Absolute deadlines: every sample answers a deadline t0 + k * interval.
    assert all((d - t0) % interval == 0 for d in deadlines)
    assert deadlines == sorted(set(deadlines))
    assert deadlines[0] == t0
    # Every deadline up to the last read is either sampled or counted as skipped.
    expected = (deadlines[-1] - t0) // interval + 1
    passed = (time.monotonic_ns() - t0) // interval + 1
    assert expected <= len(times) + end.skipped <= passed
    assert expected >= 1000
    # Statistical bounds loose enough for this VM's steal-time stalls (one of
    # 44 ms was seen in a CI run), tight enough to catch a sampler that falls
    # behind for good: the structural checks above and below are exact.
    assert len(times) >= 0.9 * expected
    assert end.late <= 0.1 * expected
    # No drift: the last sample is where the grid says, within the late bound.
    assert 0 <= times[-1] - (t0 + (expected - 1) * interval) <= interval
    assert end.skipped <= 0.1 * expected
    assert sum(b.late for b in batches) == end.late
    statistics = sampler.statistics()
    (key,) = statistics.keys
    assert (key.key, key.samples, key.late, key.ended) == ("me", len(times), end.late, True)


async def test_sub_millisecond_interval(sampler: SamplingProcess, usage_file: str) -> None:
    subscription = await sampler.register("half", usage_file, interval_ms=0.5)
    with anyio.fail_after(20):
        batches = await consume(
            subscription,
            stop_when=lambda b: len(flat(b, "times")) >= 600,
            on_stop=lambda: sampler.unregister("half"),
        )
    assert subscription.t0_ns is not None
    deadlines = [
        t - late for t, late in zip(flat(batches, "times"), flat(batches, "lateness"), strict=True)
    ]
    assert all((d - subscription.t0_ns) % 500_000 == 0 for d in deadlines)
    assert subscription.end is not None
    # Loose: one hypervisor hiccup (seen here: 5 ms) is 10 deadlines at 0.5 ms.
    assert subscription.end.late <= 0.2 * len(deadlines)


async def test_too_small_interval_counts_late_and_does_not_spin(
    sampler: SamplingProcess, usage_file: str
) -> None:
    interval = 10_000  # 0.01 ms: far below what one wake-up costs
    assert sampler.pid is not None
    cpu_before = cpu_seconds(sampler.pid)
    subscription = await sampler.register("tiny", usage_file, interval_ms=0.01)
    assert subscription.t0_ns is not None
    t0 = subscription.t0_ns

    def elapsed(batches: list[SampleBatch]) -> int:
        return batches[-1].times[-1] - t0 if batches[-1].times else 0

    with anyio.fail_after(20):
        batches = await consume(
            subscription,
            stop_when=lambda b: elapsed(b) >= 500_000_000,
            on_stop=lambda: sampler.unregister("tiny"),
        )
    end = subscription.end
    assert end is not None
    times, lateness = flat(batches, "times"), flat(batches, "lateness")
    wall = (times[-1] - t0) / 1e9
    cpu = cpu_seconds(sampler.pid) - cpu_before
    deadlines = [t - late for t, late in zip(times, lateness, strict=True)]
    assert all((d - t0) % interval == 0 for d in deadlines)  # still absolute
    assert end.late > 0
    assert end.skipped > 0
    # Reads are bounded by the deadlines that passed: no catch-up burst ...
    assert len(times) <= (times[-1] - t0) // interval + 1
    # ... and each deadline that passed was either sampled or counted skipped.
    passed = (time.monotonic_ns() - t0) // interval + 1
    assert (deadlines[-1] - t0) // interval + 1 <= len(times) + end.skipped <= passed
    # ... and the worker sleeps between wake-ups instead of busy-looping.
    assert cpu < 0.6 * wall, (cpu, wall)


async def test_memory_rise_in_a_real_cgroup(
    sampler: SamplingProcess, memory_cgroup: Callable[[], MemoryCgroup]
) -> None:
    cgroup = memory_cgroup()
    cgroup.start_allocator()
    subscription = await sampler.register("rise", cgroup.usage, interval_ms=1.0)
    baseline: list[int] = []

    def risen(batches: list[SampleBatch]) -> bool:
        values = flat(batches, "values")
        if not baseline:
            baseline.append(values[0])
            cgroup.allocate(48 * MB)  # the process is blocked on stdin until now
        return max(values) >= baseline[0] + 40 * MB

    with anyio.fail_after(20):
        batches = await consume(
            subscription, stop_when=risen, on_stop=lambda: sampler.unregister("rise")
        )
    assert max(flat(batches, "values")) >= baseline[0] + 40 * MB


async def test_cgroup_removed_mid_run_ends_cleanly_and_keeps_samples(
    sampler: SamplingProcess, memory_cgroup: Callable[[], MemoryCgroup]
) -> None:
    cgroup = memory_cgroup()
    subscription = await sampler.register("gone", cgroup.usage, interval_ms=1.0)
    with anyio.fail_after(20):
        batches = await consume(
            subscription,
            stop_when=lambda b: len(flat(b, "times")) >= 100,
            on_stop=cgroup.path.rmdir,  # the container's cgroup vanishes
        )
    end = subscription.end
    assert end is not None
    assert end.reason == "cgroup removed"
    assert end.samples == len(flat(batches, "times")) >= 100
    assert sampler.statistics().running  # the worker lives on


async def test_mixed_intervals_share_one_worker_and_one_key_ending_spares_the_rest(
    sampler: SamplingProcess, usage_file: str, memory_cgroup: Callable[[], MemoryCgroup]
) -> None:
    cgroup = memory_cgroup()
    intervals = {"a": 1.0, "b": 1.0, "c": 0.5, "d": 5.0}  # b shares a's deadlines
    paths = {"a": usage_file, "b": cgroup.usage, "c": usage_file, "d": usage_file}
    subscriptions = {k: await sampler.register(k, paths[k], ms) for k, ms in intervals.items()}
    a_t0, b_t0 = subscriptions["a"].t0_ns, subscriptions["b"].t0_ns
    assert a_t0 is not None
    assert b_t0 is not None
    # Same grid: b's first deadline is one of a's (the next one when b's
    # registration crossed a deadline).
    assert (b_t0 - a_t0) % 1_000_000 == 0
    results: dict[str, list[SampleBatch]] = {}
    b_gone = anyio.Event()

    async def collect(key: str) -> None:
        def enough(batches: list[SampleBatch]) -> bool:
            n = len(flat(batches, "times"))
            return n >= 100 if key == "b" else (b_gone.is_set() and n >= 400 / intervals[key])

        async def stop() -> None:
            if key == "b":
                cgroup.path.rmdir()
            else:
                await sampler.unregister(key)

        results[key] = await consume(subscriptions[key], stop_when=enough, on_stop=stop)
        if key == "b":
            b_gone.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for key in intervals:
                tg.start_soon(collect, key)
    for key, ms in intervals.items():
        subscription = subscriptions[key]
        assert subscription.t0_ns is not None
        assert subscription.end is not None
        interval = round(ms * 1e6)
        times, lateness = flat(results[key], "times"), flat(results[key], "lateness")
        deadlines = [t - late for t, late in zip(times, lateness, strict=True)]
        assert all((d - subscription.t0_ns) % interval == 0 for d in deadlines)
        assert subscription.end.samples == len(times)
        expected = "cgroup removed" if key == "b" else "unregistered"
        assert subscription.end.reason == expected
    # a went on after b, its group-mate, ended.
    assert flat(results["a"], "times")[-1] > flat(results["b"], "times")[-1]


async def test_refusals(sampler: SamplingProcess, usage_file: str, tmp_path: Path) -> None:
    with pytest.raises(SamplingError, match="cannot open"):
        await sampler.register("missing", str(tmp_path / "absent"), interval_ms=1.0)
    garbage = tmp_path / "garbage"
    garbage.write_text("max\n")
    with pytest.raises(SamplingError, match="cannot read a number"):
        await sampler.register("garbage", str(garbage), interval_ms=1.0)
    with pytest.raises(SamplingError, match="positive"):
        await sampler.register("zero", usage_file, interval_ms=0)
    subscription = await sampler.register("twice", usage_file, interval_ms=5.0)
    with pytest.raises(SamplingError, match="already"):
        await sampler.register("twice", usage_file, interval_ms=5.0)
    await sampler.unregister("twice")
    with anyio.fail_after(10):
        await consume(subscription)
    # Once ended, a key can be used again.
    again = await sampler.register("twice", usage_file, interval_ms=5.0)
    await sampler.unregister("twice")
    with anyio.fail_after(10):
        await consume(again)
    assert again.end is not None
    assert again.end.reason == "unregistered"


@pytest.mark.parametrize("leave", ["aclose", "drop"])
async def test_a_consumer_that_leaves_does_not_hold_up_the_others(
    sampler: SamplingProcess, usage_file: str, leave: str
) -> None:
    quitter: SampleSubscription | None = await sampler.register("quitter", usage_file, 1.0)
    stayer = await sampler.register("stayer", usage_file, interval_ms=1.0)
    assert quitter is not None
    if leave == "aclose":
        await quitter.aclose()
    quitter = None  # dropped without a word: collected, its stream closes
    with anyio.fail_after(20):
        # More batches than the quitter's buffer holds: the pump did not wait for it.
        await consume(
            stayer,
            stop_when=lambda b: len(b) >= 40 and _dropped(sampler, "quitter") > 0,
            on_stop=lambda: sampler.unregister("stayer"),
        )
    assert _dropped(sampler, "quitter") > 0
    await sampler.unregister("quitter")


def _dropped(sampler: SamplingProcess, key: str) -> int:
    return next(k.dropped_batches for k in sampler.statistics().keys if k.key == key)


async def test_cancelling_run_stops_the_worker_and_ends_subscriptions(usage_file: str) -> None:
    proc = SamplingProcess()
    async with anyio.create_task_group() as tg:
        await tg.start(proc.run)
        subscription = await proc.register("k", usage_file, interval_ms=1.0)
        pid = proc.pid
        tg.cancel_scope.cancel()
    assert subscription.end is not None
    assert subscription.end.reason in {"shutdown", "sampling process stopped"}
    assert pid is not None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert not proc.statistics().running
    with pytest.raises(SamplingError, match="not running"):
        await proc.register("late", usage_file, interval_ms=1.0)


async def test_worker_failing_at_start_reports_its_stderr() -> None:
    proc = SamplingProcess(
        command=[
            sys.executable,
            "-c",
            "import sys; sys.stderr.write('no cgroups here\\n'); sys.exit(3)",
        ]
    )
    async with anyio.create_task_group() as tg:
        with pytest.raises(SamplingError, match=r"(?s)exit code 3.*no cgroups here"):
            await tg.start(proc.run)


async def test_worker_that_never_says_hello_times_out() -> None:
    proc = SamplingProcess(
        command=[sys.executable, "-c", "import time; time.sleep(60)"],
        hello_timeout=0.5,
        stop_timeout=0.5,
    )
    async with anyio.create_task_group() as tg:
        with pytest.raises(SamplingError, match="did not say hello"):
            await tg.start(proc.run)


async def test_worker_killed_mid_run_fails_run_and_ends_subscriptions(usage_file: str) -> None:
    proc = SamplingProcess()
    subscription: SampleSubscription | None = None
    with pytest.RaisesGroup(pytest.RaisesExc(SamplingError, match="exited unexpectedly")):
        async with anyio.create_task_group() as tg:
            await tg.start(proc.run)
            subscription = await proc.register("k", usage_file, interval_ms=1.0)
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            with anyio.fail_after(10):
                await consume(subscription)
    assert subscription is not None
    assert subscription.end is not None
    assert subscription.end.reason == "sampling process died"


# -- the kernel's peak -------------------------------------------------------------------


def test_kernel_peak_read_and_reset_on_a_real_cgroup(
    memory_cgroup: Callable[[], MemoryCgroup],
) -> None:
    cgroup = memory_cgroup()
    if not Path(cgroup.peak).exists():
        pytest.skip("no peak file on this kernel")
    cgroup.start_allocator()
    with PeakWatermark.open(cgroup.peak) as watermark:
        cgroup.allocate(32 * MB)
        cgroup.allocate(0)  # freed again: only the watermark remembers
        peak = watermark.read()
        assert peak is not None
        assert peak >= 32 * MB
        assert read_kernel_peak(cgroup.peak) == peak
    if cgroup.peak.endswith("max_usage_in_bytes"):  # v1: a global reset
        assert reset_peak(cgroup.peak)
        after = read_kernel_peak(cgroup.peak)
        assert after is not None
        assert after < 32 * MB


def test_peak_helpers_on_missing_or_foreign_files(tmp_path: Path) -> None:
    assert read_kernel_peak(None) is None
    assert read_kernel_peak(str(tmp_path / "absent")) is None
    assert not reset_peak(str(tmp_path / "absent"))
    v2_peak = tmp_path / "memory.peak"
    v2_peak.write_text("123\n")
    assert not reset_peak(str(v2_peak))  # v2 resets only per fd: never global
    with PeakWatermark.open(str(v2_peak)) as watermark:
        assert watermark.reset  # a plain file takes the write, like Linux >= 6.12
    assert watermark.read() is None  # closed
