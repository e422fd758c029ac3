"""The timed reads shared by every sampling process (no event loop, one thread).

:class:`SamplingLoop` holds the registrations (one open file descriptor per
file) grouped by interval, each group on one deadline grid (``_grid``), and
reads every file of a group back to back when its deadline comes. Frames go
to each registration's :class:`Outbox`: the private worker has one (its
stdout), the host sampler one per connection. The processes around it
(``_worker``, ``_hostd``) decide when to call :meth:`SamplingLoop.sample_due`
and what to do between deadlines; this module owns the reads, the lateness
accounting and the batching.

A read never waits for output: frames go to an in-process buffer written
with non-blocking writes when the peer has room. Beyond ``MAX_PENDING_OUTPUT``
an outbox either blocks (the private worker: its one host is merely slow, and
the deadlines lost meanwhile are counted late) or gives its peer up (the host
sampler: one stalled client must not hold up every other deployment).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import heapq
import os
import select
import socket
import stat
import time
from array import array
from typing import Literal

from ._grid import catch_up, first_deadline
from ._protocol import Batch, Ended, WorkerEvent, encode_frame, pack_int64

__all__ = (
    "FIFO_PRIORITY",
    "FLUSH_NS",
    "MAX_PENDING_OUTPUT",
    "MIN_WAKE_PERIOD_NS",
    "PRIORITY_ENV",
    "SPIN_ENV",
    "SPIN_NS",
    "Outbox",
    "Registration",
    "SamplingLoop",
    "raise_priority",
    "spin_from_environment",
    "tighten_timers",
)

#: Flush a key's batch after this many samples ...
FLUSH_SAMPLES = 256
#: ... or at least this often, so the client sees data promptly.
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
#: Beyond this much unsent output an outbox blocks or gives its peer up.
MAX_PENDING_OUTPUT = 64 * 1024 * 1024
#: SCHED_FIFO priority: above every normal process, below threaded IRQ
#: handlers (50), so we never delay interrupt handling.
FIFO_PRIORITY = 20
#: Set to "normal" to keep a sampling process at default scheduling.
PRIORITY_ENV = "FAASLAB_SAMPLER_PRIORITY"
#: Override SPIN_NS (in µs) for measurements.
SPIN_ENV = "FAASLAB_SAMPLER_SPIN_US"
_F_SETPIPE_SZ = 1031
_PR_SET_TIMERSLACK = 29
_BUFFER_SIZE = 1024 * 1024

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


def tighten_timers() -> None:
    """Ask for 1 ns timer slack (the default 50 µs would blur every wake-up).

    Real-time tasks get zero slack anyway; this helps the nice/normal fallback.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(1), 0, 0, 0)


def spin_from_environment() -> int:
    spin_us = os.environ.get(SPIN_ENV)
    return SPIN_NS if spin_us is None else int(float(spin_us) * 1000)


class Outbox:
    """Frames to one peer (a pipe or a socket), and the keys it registered.

    Non-blocking until MAX_PENDING_OUTPUT is queued; then ``overflow`` says
    what happens: "block" until the peer takes it all, or "drop" the peer.
    A peer that went away (or was dropped) makes the outbox ``broken``: its
    output is discarded from then on, and its owner ends its registrations.
    """

    def __init__(self, fd: int, *, overflow: Literal["block", "drop"]) -> None:
        self.fd = fd
        self.overflow = overflow
        self.pending = bytearray()
        #: Why the peer is gone, once it is.
        self.broken: str | None = None
        self.registrations: dict[str, Registration] = {}
        mode = os.fstat(fd).st_mode
        with contextlib.suppress(OSError):
            if stat.S_ISFIFO(mode):
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _BUFFER_SIZE)
            elif stat.S_ISSOCK(mode):
                sock = socket.socket(fileno=os.dup(fd))
                with sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER_SIZE)
        os.set_blocking(fd, False)

    def send(self, event: WorkerEvent) -> None:
        if self.broken is None:
            self.pending += encode_frame(event)

    def write_some(self) -> None:
        """Write what the peer takes now."""
        while self.pending and self.broken is None:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                break
            except OSError as exc:  # EPIPE, ECONNRESET: the peer is gone
                self._break(f"peer gone ({exc.strerror})")
                return
            del self.pending[:written]
        if len(self.pending) > MAX_PENDING_OUTPUT:
            if self.overflow == "block":
                self.drain()
            else:
                self._break(f"peer too slow: over {MAX_PENDING_OUTPUT >> 20} MiB unread")

    def drain(self) -> None:
        """Block until everything queued is written (or the peer is gone)."""
        while self.pending and self.broken is None:
            select.select([], [self.fd], [])
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._break(f"peer gone ({exc.strerror})")
                return
            del self.pending[:written]

    def _break(self, why: str) -> None:
        self.broken = why
        self.pending.clear()


class Registration:
    """One sampled file: its descriptor, its group, its unsent samples."""

    __slots__ = (
        "fd",
        "group",
        "key",
        "late",
        "lateness",
        "outbox",
        "path",
        "skipped",
        "times",
        "total_late",
        "total_samples",
        "total_skipped",
        "values",
    )

    def __init__(self, key: str, path: str, fd: int, group: _Group, outbox: Outbox) -> None:
        self.key = key
        self.path = path
        self.fd = fd
        self.group = group
        self.outbox = outbox
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
        self.registrations: list[Registration] = []


class SamplingLoop:
    """Registrations on deadline grids, read when due; see the module docstring."""

    def __init__(self, *, spin_ns: int = SPIN_NS) -> None:
        self._spin_ns = spin_ns
        self._heap: list[tuple[int, int, _Group]] = []
        self._groups: dict[int, _Group] = {}  # by interval
        self._seq = 0
        self._next_flush = time.monotonic_ns() + FLUSH_NS
        self._last_pass = 0

    # -- registrations ---------------------------------------------------------

    @property
    def files(self) -> int:
        return sum(len(g.registrations) for g in self._groups.values())

    @property
    def intervals(self) -> tuple[int, ...]:
        return tuple(sorted(self._groups))

    def open(self, path: str) -> int | str:
        """Open `path` and check it holds a number: the descriptor, or why not."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            return f"cannot open {path}: {exc.strerror}"
        try:
            int(os.pread(fd, 64, 0))
        except (OSError, ValueError) as exc:
            os.close(fd)
            return f"cannot read a number from {path}: {exc}"
        return fd

    def add(self, outbox: Outbox, key: str, path: str, fd: int, interval: int) -> Registration:
        """Sample `fd` every `interval` ns for `outbox` under `key`; returns the
        registration (its first deadline is ``registration.group.deadline``)."""
        group = self._groups.get(interval)
        if group is None:
            t0 = first_deadline(time.monotonic_ns(), interval)
            self._seq += 1
            group = self._groups[interval] = _Group(interval, t0, self._seq)
            heapq.heappush(self._heap, (t0, group.seq, group))
        # Joining a group: its next deadline is our t0 (at most one interval
        # away, or due right now: then the first read is merely a little late).
        registration = Registration(key, path, fd, group, outbox)
        group.registrations.append(registration)
        outbox.registrations[key] = registration
        return registration

    def end(self, registration: Registration, reason: str) -> None:
        """Stop sampling; the last batch and Ended go out unless the peer is gone."""
        self._send_batch(registration)
        outbox = registration.outbox
        outbox.send(
            Ended(
                key=registration.key,
                reason=reason,
                samples=registration.total_samples,
                late=registration.total_late,
                skipped=registration.total_skipped,
            )
        )
        with contextlib.suppress(OSError):
            os.close(registration.fd)
        outbox.registrations.pop(registration.key, None)
        group = registration.group
        group.registrations.remove(registration)
        if not group.registrations:
            del self._groups[group.interval]
            # In place: sample_due iterates this very list.
            self._heap[:] = [entry for entry in self._heap if entry[2] is not group]
            heapq.heapify(self._heap)
        outbox.write_some()

    def end_all(self, outbox: Outbox, reason: str) -> None:
        for registration in list(outbox.registrations.values()):
            self.end(registration, reason)

    # -- timed reads ---------------------------------------------------------

    def pass_started(self) -> None:
        self._last_pass = time.monotonic_ns()

    def sample_due(self) -> None:
        """Read every group whose deadline has come, then flush when it is time."""
        heap = self._heap
        pread = os.pread
        monotonic_ns = time.monotonic_ns
        while heap:
            deadline, seq, group = heap[0]
            interval = group.interval
            now = monotonic_ns()
            if deadline > now:
                if deadline - now > min(self._spin_ns, interval // 10):
                    break
                while monotonic_ns() < deadline:  # the last few µs: spin
                    pass
            ended: list[tuple[Registration, str]] = []
            full: list[Registration] = []
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
                    full.append(reg)
            following, missed = catch_up(deadline + interval, monotonic_ns(), interval)
            if missed:
                gone = {reg for reg, _ in ended}
                for reg in group.registrations:
                    if reg not in gone:
                        reg.skipped += missed
                        reg.late += missed
            group.deadline = following
            heapq.heapreplace(heap, (following, seq, group))
            # After heapreplace: ending the last of a group removes its entry.
            for reg, reason in ended:
                self.end(reg, reason)
            if full:
                outboxes = {reg.outbox for reg in full}
                for reg in full:
                    self._send_batch(reg)
                for outbox in outboxes:
                    outbox.write_some()
        now = monotonic_ns()
        if now >= self._next_flush:
            self.flush_all()
            self._next_flush = now + FLUSH_NS

    def _send_batch(self, registration: Registration) -> None:
        batch = registration.take_batch()
        if batch is not None:
            registration.outbox.send(batch)

    def flush_all(self) -> None:
        outboxes: set[Outbox] = set()
        for group in self._groups.values():
            for registration in group.registrations:
                self._send_batch(registration)
                outboxes.add(registration.outbox)
        for outbox in outboxes:
            outbox.write_some()

    def timeout(self, now: int, idle_s: float) -> float:
        """How long the owner may sleep before the next deadline (or flush)."""
        if not self._heap:
            return idle_s
        deadline, _, group = self._heap[0]
        wake = min(deadline - min(self._spin_ns, group.interval // 10), self._next_flush)
        wake = max(wake, self._last_pass + MIN_WAKE_PERIOD_NS)
        return max(0, wake - now) / 1e9
