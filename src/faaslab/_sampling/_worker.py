"""A private sampling process: timed reads of cgroup memory files for one client.

Run as ``python -m faaslab._sampling._worker`` by :class:`SamplingProcess`
(``_client``); it speaks the frames of :mod:`faaslab._sampling._protocol` on
stdin/stdout. Deployments use the host sampler (``_hostd``) instead, one
process for every deployment on the host; this worker remains for tools and
benchmarks that sample files of their own (no container, no deployment).

Why a process: the timed reads must not share a GIL with a busy event loop
(measured: a 1 ms sampling thread beside a busy loop misses 98.5 % of its
deadlines). Here a single thread does everything, in this order, forever:

1. read every registration whose deadline has come (``SamplingLoop``,
   ``_loop``: one ``pread`` on a file descriptor opened once at Register;
   registrations of equal interval form one group with shared deadlines,
   read back to back), then flush batches when due,
2. sleep in ``select`` on stdin (commands) and, when output is pending,
   stdout, until the next deadline minus a short spin window.

Commands therefore never interrupt a read; they are handled between
deadlines. Deadlines are absolute (``t0 + k * interval``, ``_grid``): they
never drift. When the process falls more than one interval behind it skips
the missed deadlines (counted as late and skipped) and resumes at the next
future deadline: it never spins to catch up. It never wakes more often than
every MIN_WAKE_PERIOD_NS either, so an absurd interval (10 µs) costs a
bounded share of a core and shows up as late.

Output never blocks sampling while the host is merely slow (the pipe is
enlarged to 1 MiB and written without blocking); only beyond
``MAX_PENDING_OUTPUT`` does the worker block on it, and the deadlines lost
meanwhile are counted late, so a stalled host shows up in the figures
instead of as silent loss.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import sys
import time

from ._loop import Outbox, SamplingLoop, raise_priority, spin_from_environment, tighten_timers
from ._protocol import (
    Attach,
    Ended,
    FrameReader,
    Hello,
    HostCommand,
    Refused,
    Register,
    Registered,
    Shutdown,
    StatusQuery,
    Unregister,
    decode_command,
)

__all__ = ("Worker", "main")

#: Sleep at most this long when idle, to notice SIGTERM promptly.
IDLE_WAKE_S = 0.5


class Worker:
    """The private sampling loop; see the module docstring."""

    def __init__(self, in_fd: int, out_fd: int, *, spin_ns: int | None = None) -> None:
        self._in_fd = in_fd
        self._out = Outbox(out_fd, overflow="block")
        self._loop = SamplingLoop(spin_ns=spin_from_environment() if spin_ns is None else spin_ns)
        self._commands = FrameReader()
        self.stopping = False

    def hello(self, priority: str) -> None:
        self._out.send(Hello(pid=os.getpid(), priority=priority))
        self._out.write_some()

    def run(self) -> int:
        """Sample until told to stop; 1 when the host went away first."""
        try:
            while not self.stopping and self._out.broken is None:
                self._loop.pass_started()
                self._loop.sample_due()
                self._wait()
        finally:
            self._stop()
        return 0 if self._out.broken is None else 1

    def _wait(self) -> None:
        timeout = self._loop.timeout(time.monotonic_ns(), IDLE_WAKE_S)
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
        out = self._out
        match command:
            case Register(key=key, path=path, interval_ns=interval):
                self._register(key, path, interval)
            case Unregister(key=key):
                registration = out.registrations.get(key)
                if registration is None:
                    out.send(Ended(key=key, reason="not registered", samples=0, late=0))
                else:
                    self._loop.end(registration, "unregistered")
            case Shutdown():
                self.stopping = True
            case Attach() | StatusQuery():
                pass  # socket-only frames: a pipe has one client and needs no access check
        out.write_some()

    def _register(self, key: str, path: str, interval: int) -> None:
        out = self._out
        if key in out.registrations:
            out.send(Refused(key=key, error=f"key {key!r} is already registered"))
            return
        if interval <= 0:
            out.send(Refused(key=key, error=f"interval must be positive, got {interval} ns"))
            return
        opened = self._loop.open(path)
        if isinstance(opened, str):
            out.send(Refused(key=key, error=opened))
            return
        registration = self._loop.add(out, key, path, opened, interval)
        out.send(Registered(key=key, t0_ns=registration.group.deadline, path=path))

    def _stop(self) -> None:
        self._loop.end_all(self._out, "shutdown")
        with contextlib.suppress(OSError):
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
    tighten_timers()
    gc.freeze()  # nothing allocated so far needs scanning again
    worker = Worker(sys.stdin.fileno(), out_fd)

    def _terminate(signum: int, frame: object) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, _terminate)
    worker.hello(priority)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
