"""The sampling process: timed reads of cgroup memory files, off the event loop.

Run as ``python -m faaslab._sampling._worker``; one per deployment. It speaks
the frames of :mod:`faaslab._sampling._protocol` on stdin/stdout.

Why a process: the timed reads must not share a GIL with a busy event loop
(measured: a 1 ms sampling thread beside a busy loop misses 98.5 % of its
deadlines). Here a single thread does everything, in this order, forever:

1. read every registration whose deadline has come (one ``pread`` on a file
   descriptor opened once at Register; registrations of equal interval form
   one group with shared deadlines, read back to back),
2. housekeeping: flush batches (every ``FLUSH_NS`` or ``FLUSH_SAMPLES``),
3. sleep in ``select`` on stdin (commands) and, when output is pending,
   stdout, until the next deadline minus a short spin window.

Commands therefore never interrupt a read; they are handled between
deadlines. Deadlines are absolute (``t0 + k * interval``): they never drift.
Groups are aligned to a shared grid (multiples of gcd(interval, 1 ms) on
the monotonic clock) so that 32 files at 1 ms cost one wake-up per
millisecond, not 32 (a wake-up costs ~25 µs of CPU on the 2-core VM this
was measured on, a read ~1 µs). When the process falls more than one
interval behind it skips the missed deadlines (counted as late and skipped)
and resumes at the next future deadline: it never spins to catch up. It
never wakes more often than every MIN_WAKE_PERIOD_NS either, so an absurd
interval (10 µs) costs a bounded share of a core and shows up as late.

Output never blocks sampling while the host is merely slow: frames go to an
in-process buffer written with non-blocking writes when the pipe has room
(the pipe is also enlarged to 1 MiB). Only beyond ``MAX_PENDING_OUTPUT``
does the worker block on the pipe; the deadlines lost meanwhile are counted
late, so a stalled host shows up in the figures instead of as silent loss.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import gc
import heapq
import math
import os
import select
import signal
import sys
import time
from array import array

from ._protocol import (
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
    encode_frame,
    pack_int64,
)

__all__ = ("main",)

#: Flush a key's batch after this many samples ...
FLUSH_SAMPLES = 256
#: ... or at least this often, so the host sees data promptly.
FLUSH_NS = 50_000_000
#: Busy-wait at most this long before a deadline (capped at a tenth of the
#: interval). Off by default: measured here at 1 ms, a 50 µs spin takes the
#: median lateness of one file from ~40 µs to ~0.1 µs but leaves the p99
#: (~100 µs, wake-ups later than the spin window) unchanged, and costs ~5 % of
#: a core per 1 ms tick. Lateness only counts as an error beyond a whole
#: interval, so the CPU is better spent elsewhere. Set FAASLAB_SAMPLER_SPIN_US.
SPIN_NS = 0
#: Never wake more often than this: an interval below it (say 10 µs) is
#: served late and counted so, instead of keeping a core busy.
MIN_WAKE_PERIOD_NS = 100_000
#: Beyond this much unsent output, block on the pipe (memory stays bounded).
MAX_PENDING_OUTPUT = 64 * 1024 * 1024
#: Sleep at most this long when idle, to notice SIGTERM promptly.
IDLE_WAKE_S = 0.5
#: SCHED_FIFO priority: above every normal process, below threaded IRQ
#: handlers (50), so we never delay interrupt handling.
FIFO_PRIORITY = 20
#: Set to "normal" to keep the worker at default scheduling.
PRIORITY_ENV = "FAASLAB_SAMPLER_PRIORITY"
#: Override SPIN_NS (in µs) for measurements.
SPIN_ENV = "FAASLAB_SAMPLER_SPIN_US"
_F_SETPIPE_SZ = 1031
_PR_SET_TIMERSLACK = 29
_PIPE_SIZE = 1024 * 1024

_END_REASONS = {
    errno.ENODEV: "cgroup removed",
    errno.ENOENT: "file removed",
    errno.ESRCH: "process gone",
}


def raise_priority() -> str:
    """Best scheduling we are allowed; returns what we got, for the Hello."""
    if os.environ.get(PRIORITY_ENV, "").strip().lower() == "normal":
        return "normal"
    with contextlib.suppress(OSError, AttributeError):
        # RESET_ON_FORK: nothing we might spawn inherits real-time scheduling.
        policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
        os.sched_setscheduler(0, policy, os.sched_param(FIFO_PRIORITY))
        return f"SCHED_FIFO {FIFO_PRIORITY}"
    for niceness in (-20, -15, -10, -5, -1):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
            return f"nice {niceness}"
    return "normal"


def _tighten_timers() -> None:
    """Ask for 1 ns timer slack (the default 50 µs would blur every wake-up).

    Real-time tasks get zero slack anyway; this helps the nice/normal fallback.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(1), 0, 0, 0)


class _Registration:
    __slots__ = (
        "fd",
        "group",
        "key",
        "late",
        "lateness",
        "skipped",
        "times",
        "total_late",
        "total_samples",
        "total_skipped",
        "values",
    )

    def __init__(self, key: str, fd: int, group: _Group) -> None:
        self.key = key
        self.fd = fd
        self.group = group
        self.times: array[int] = array("q")
        self.values: array[int] = array("q")
        self.lateness: array[int] = array("q")
        self.late = 0  # since the last batch
        self.skipped = 0
        self.total_samples = 0
        self.total_late = 0
        self.total_skipped = 0

    def take_batch(self) -> Batch | None:
        if not self.times and not self.late:
            return None
        batch = Batch(
            key=self.key,
            times=pack_int64(self.times),
            values=pack_int64(self.values),
            lateness=pack_int64(self.lateness),
            late=self.late,
            skipped=self.skipped,
        )
        self.total_samples += len(self.times)
        self.total_late += self.late
        self.total_skipped += self.skipped
        self.times = array("q")
        self.values = array("q")
        self.lateness = array("q")
        self.late = 0
        self.skipped = 0
        return batch


class _Group:
    """The registrations of one interval: they share deadlines, so one heap
    entry and one wake-up serve them all."""

    __slots__ = ("deadline", "interval", "registrations", "seq")

    def __init__(self, interval: int, deadline: int, seq: int) -> None:
        self.interval = interval
        self.deadline = deadline
        self.seq = seq  # ties in the heap never compare groups
        self.registrations: list[_Registration] = []


class _Output:
    """Frames to the host; non-blocking until MAX_PENDING_OUTPUT is queued."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = bytearray()
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        os.set_blocking(fd, False)

    def send(self, event: WorkerEvent) -> None:
        self.pending += encode_frame(event)

    def write_some(self) -> None:
        """Write what the pipe takes now. BrokenPipeError: the host is gone."""
        while self.pending:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                break
            del self.pending[:written]
        if len(self.pending) > MAX_PENDING_OUTPUT:
            self.drain()

    def drain(self) -> None:
        """Block until everything queued is written."""
        while self.pending:
            select.select([], [self.fd], [])
            with contextlib.suppress(BlockingIOError):
                written = os.write(self.fd, self.pending)
                del self.pending[:written]


class Worker:
    """The sampling loop; see the module docstring."""

    def __init__(self, in_fd: int, out_fd: int, *, spin_ns: int = SPIN_NS) -> None:
        self._in_fd = in_fd
        self._out = _Output(out_fd)
        self._spin_ns = spin_ns
        self._commands = FrameReader()
        self._heap: list[tuple[int, int, _Group]] = []
        self._groups: dict[int, _Group] = {}  # by interval
        self._registrations: dict[str, _Registration] = {}
        self._seq = 0
        self._next_flush = time.monotonic_ns() + FLUSH_NS
        self._last_pass = 0
        self.stopping = False

    def hello(self, priority: str) -> None:
        self._out.send(Hello(pid=os.getpid(), priority=priority))
        self._out.write_some()

    def run(self) -> None:
        try:
            while not self.stopping:
                self._last_pass = time.monotonic_ns()
                self._sample_due()
                now = time.monotonic_ns()
                if now >= self._next_flush:
                    self._flush_all()
                    self._next_flush = now + FLUSH_NS
                self._wait(now)
        finally:
            self._stop()

    # -- timed reads ---------------------------------------------------------

    def _sample_due(self) -> None:
        heap = self._heap
        pread = os.pread
        monotonic_ns = time.monotonic_ns
        while heap:
            deadline, seq, group = heap[0]
            interval = group.interval
            now = monotonic_ns()
            if deadline > now:
                if deadline - now > min(self._spin_ns, interval // 10):
                    return
                while monotonic_ns() < deadline:  # the last few µs: spin
                    pass
            ended: list[tuple[_Registration, str]] = []
            full = False
            for reg in group.registrations:
                read_at = monotonic_ns()
                try:
                    value = int(pread(reg.fd, 64, 0))
                except OSError as exc:
                    ended.append((reg, _END_REASONS.get(exc.errno or 0, f"read failed: {exc}")))
                    continue
                except ValueError as exc:  # empty or garbage: no longer a counter
                    ended.append((reg, f"unparsable value: {exc}"))
                    continue
                reg.times.append(read_at)
                reg.values.append(value)
                lateness = read_at - deadline
                reg.lateness.append(lateness)
                if lateness > interval:
                    reg.late += 1
                if len(reg.times) >= FLUSH_SAMPLES:
                    full = True
            following = deadline + interval
            behind = monotonic_ns() - following
            if behind > interval:
                # More than one interval behind: skip to the next future deadline.
                missed = behind // interval + 1
                following += missed * interval
                gone = {reg for reg, _ in ended}
                for reg in group.registrations:
                    if reg not in gone:
                        reg.skipped += missed
                        reg.late += missed
            group.deadline = following
            heapq.heapreplace(heap, (following, seq, group))
            # After heapreplace: ending the last of a group removes its entry.
            for reg, reason in ended:
                self._end(reg, reason)
            if full:
                for reg in group.registrations:
                    if len(reg.times) >= FLUSH_SAMPLES:
                        self._send_batch(reg)
                self._out.write_some()

    # -- housekeeping --------------------------------------------------------

    def _send_batch(self, reg: _Registration) -> None:
        batch = reg.take_batch()
        if batch is not None:
            self._out.send(batch)

    def _flush_all(self) -> None:
        for reg in self._registrations.values():
            self._send_batch(reg)
        self._out.write_some()

    def _end(self, reg: _Registration, reason: str) -> None:
        self._send_batch(reg)
        self._out.send(
            Ended(
                key=reg.key,
                reason=reason,
                samples=reg.total_samples,
                late=reg.total_late,
                skipped=reg.total_skipped,
            )
        )
        with contextlib.suppress(OSError):
            os.close(reg.fd)
        del self._registrations[reg.key]
        group = reg.group
        group.registrations.remove(reg)
        if not group.registrations:
            del self._groups[group.interval]
            # In place: _sample_due iterates this very list.
            self._heap[:] = [entry for entry in self._heap if entry[2] is not group]
            heapq.heapify(self._heap)
        self._out.write_some()

    def _wait(self, now: int) -> None:
        timeout: float | None = IDLE_WAKE_S
        if self._heap:
            deadline, _, group = self._heap[0]
            wake = min(deadline - min(self._spin_ns, group.interval // 10), self._next_flush)
            wake = max(wake, self._last_pass + MIN_WAKE_PERIOD_NS)
            timeout = max(0, wake - now) / 1e9
        writers = [self._out.fd] if self._out.pending else []
        readable, writable, _ = select.select([self._in_fd], writers, [], timeout)
        if writable:
            self._out.write_some()
        if readable:
            self._read_commands()

    def _read_commands(self) -> None:
        data = os.read(self._in_fd, 65536)
        if not data:  # the host closed our stdin (or died): stop
            self.stopping = True
            return
        for body in self._commands.feed(data):
            self._handle(decode_command(body))

    def _handle(self, command: HostCommand) -> None:
        match command:
            case Register(key=key, path=path, interval_ns=interval):
                self._register(key, path, interval)
            case Unregister(key=key):
                reg = self._registrations.get(key)
                if reg is None:
                    self._out.send(Ended(key=key, reason="not registered", samples=0, late=0))
                else:
                    self._end(reg, "unregistered")
            case Shutdown():
                self.stopping = True
        self._out.write_some()

    def _register(self, key: str, path: str, interval: int) -> None:
        if key in self._registrations:
            self._out.send(Refused(key=key, error=f"key {key!r} is already registered"))
            return
        if interval <= 0:
            self._out.send(Refused(key=key, error=f"interval must be positive, got {interval} ns"))
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._out.send(Refused(key=key, error=f"cannot open {path}: {exc.strerror}"))
            return
        try:
            int(os.pread(fd, 64, 0))
        except (OSError, ValueError) as exc:
            os.close(fd)
            self._out.send(Refused(key=key, error=f"cannot read a number from {path}: {exc}"))
            return
        group = self._groups.get(interval)
        if group is None:
            # A shared grid: groups whose intervals divide 1 ms wake together.
            grid = math.gcd(interval, 1_000_000)
            t0 = (time.monotonic_ns() // grid + 1) * grid
            self._seq += 1
            group = self._groups[interval] = _Group(interval, t0, self._seq)
            heapq.heappush(self._heap, (t0, group.seq, group))
        # Joining a group: its next deadline is our t0 (at most one interval
        # away, or due right now: then the first read is merely a little late).
        reg = _Registration(key, fd, group)
        group.registrations.append(reg)
        self._registrations[key] = reg
        self._out.send(Registered(key=key, t0_ns=group.deadline))

    def _stop(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            for reg in list(self._registrations.values()):
                self._end(reg, "shutdown")
            os.set_blocking(self._out.fd, True)
            self._out.drain()


def main() -> int:
    # Frames go to a private copy of stdout; fd 1 becomes stderr so that a
    # stray print (or a library's log line) can never corrupt the stream.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    # Ctrl-C in a terminal reaches the whole process group: the host decides
    # when we stop (Shutdown, or closing our stdin), so we flush first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    priority = raise_priority()
    _tighten_timers()
    gc.freeze()  # nothing allocated so far needs scanning again
    spin_us = os.environ.get(SPIN_ENV)
    spin_ns = SPIN_NS if spin_us is None else int(float(spin_us) * 1000)
    worker = Worker(sys.stdin.fileno(), out_fd, spin_ns=spin_ns)

    def _terminate(signum: int, frame: object) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, _terminate)
    try:
        worker.hello(priority)
        worker.run()
    except BrokenPipeError:  # the host is gone: nobody to flush to
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
