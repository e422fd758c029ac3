"""The host sampler: one sampling process for every deployment on the host.

Run as ``python -m faaslab._sampling._hostd`` — started on first use by
``_launch`` (``--daemonize``), or in the foreground by ``faaslab sampler
serve`` (say, as a Swarm global service with ``--tcp``). One thread, like the
private worker (``_worker``), does everything between deadlines:

1. read every registration whose deadline has come (``SamplingLoop``: one
   grid per interval, shared by every deployment sampling at that interval),
   flush batches, each to the connection that registered the key;
2. sleep in ``select`` on the listeners, the connections, and the access
   checker's pipe, until the next deadline.

Each connection serves one deployment (``Attach``). A Register is checked
before its file is opened: the access checker (``_verifier``, a child at
normal priority, because engine calls need an event loop that must not
share a GIL with the timed reads) asks the engine whether the container
carries the deployment's label (and token), finds its memory file, and
answers with the one file the sampler may open.

A client that goes away has its files closed at once; a client that stops
reading for over ``MAX_PENDING_OUTPUT`` of frames is dropped, so that it
cannot hold up the other deployments. With no deployment attached for
``--idle-exit`` seconds the sampler exits (0: never).
"""

from __future__ import annotations

import argparse
import gc
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import structlog

from .._logging import configure_logging
from ._access import AccessRequest, Verdict
from ._address import default_address
from ._launch import idle_exit_from_environment
from ._listen import (
    Listener,
    Transport,
    daemonize,
    lock_pid_file,
    peer_name,
    tcp_listener,
    unix_listener,
)
from ._loop import (
    MIN_WAKE_PERIOD_NS,
    Outbox,
    SamplingLoop,
    raise_priority,
    spin_from_environment,
    tighten_timers,
)
from ._protocol import (
    PROTOCOL_VERSION,
    Attach,
    DaemonReady,
    Denied,
    Ended,
    FrameReader,
    Hello,
    HostCommand,
    Refused,
    Register,
    Registered,
    Shutdown,
    Status,
    StatusQuery,
    Unregister,
    decode_command,
)
from ._verifier import CheckerProcess

__all__ = ("HostDaemon", "main")

log = structlog.get_logger()

#: Wake at least this often when nothing is due (SIGTERM, idle exit).
IDLE_WAKE_S = 0.5
MAX_CONNECTIONS = 256
MAX_FILES_PER_CONNECTION = 4096
_READ_SIZE = 1024 * 1024


class _Connection:
    """One client: its frames in and out, its deployment, its keys."""

    def __init__(self, sock: socket.socket, ident: int, transport: Transport, peer: str) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.ident = ident
        self.transport: Transport = transport
        self.peer = peer
        self.outbox = Outbox(self.fd, overflow="drop")
        self.reader = FrameReader()
        self.session: Attach | None = None
        #: Keys whose Register awaits the access checker.
        self.pending: set[str] = set()
        #: Close once the output is written (after Shutdown or Denied).
        self.closing = False


class HostDaemon:
    """The host sampler's loop; see the module docstring."""

    def __init__(
        self,
        listeners: list[Listener],
        *,
        idle_exit_s: float,
        engine: str,
        priority: str = "normal",
        checker: list[str] | None = None,
        spin_ns: int | None = None,
    ) -> None:
        self._listeners = listeners
        self._idle_exit_ns = int(idle_exit_s * 1e9)
        self._engine = engine
        self.priority = priority
        self._loop = SamplingLoop(spin_ns=spin_from_environment() if spin_ns is None else spin_ns)
        self._checker = CheckerProcess(
            checker or [sys.executable, "-m", "faaslab._sampling._verifier"]
        )
        self._connections: dict[int, _Connection] = {}
        self._requests: dict[int, tuple[_Connection, Register]] = {}
        self._next_request = 0
        self._next_ident = 0
        self._started_ns = time.monotonic_ns()
        self._idle_since: int | None = self._started_ns
        self.stopping = False

    def start_checker(self) -> None:
        self._checker.start()

    def status(self) -> Status:
        attached: dict[str, int] = {}
        sessions = 0
        for connection in self._connections.values():
            # A client gone (not yet reaped) is no longer attached.
            if connection.session is None or connection.outbox.broken is not None:
                continue
            sessions += 1
            deployment = connection.session.deployment
            files = len(connection.outbox.registrations)
            attached[deployment] = attached.get(deployment, 0) + files
        return Status(
            pid=os.getpid(),
            priority=self.priority,
            deployments=len(attached),
            files=self._loop.files,
            connections=sessions,
            attached=attached,
            intervals_ns=self._loop.intervals,
            listening=tuple(listener.address for listener in self._listeners),
            uptime_s=round((time.monotonic_ns() - self._started_ns) / 1e9, 3),
        )

    def run(self) -> None:
        """Serve until SIGTERM or the idle exit; :meth:`close` ends the clients."""
        while not self.stopping:
            self._loop.pass_started()
            self._loop.sample_due()
            self._reap()
            now = time.monotonic_ns()
            if self._idle_for_too_long(now):
                log.info("sampler.idle_exit", idle_s=self._idle_exit_ns / 1e9)
                break
            self._wait(now)

    # -- idling --------------------------------------------------------------

    def _idle_for_too_long(self, now: int) -> bool:
        attached = any(c.session is not None for c in self._connections.values())
        if attached:
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        return self._idle_exit_ns > 0 and now - self._idle_since >= self._idle_exit_ns

    # -- waiting -------------------------------------------------------------

    def _wait(self, now: int) -> None:
        timeout = self._loop.timeout(now, IDLE_WAKE_S)
        if self._idle_exit_ns > 0 and self._idle_since is not None:
            timeout = min(timeout, max(0, self._idle_since + self._idle_exit_ns - now) / 1e9)
        readers: list[int] = [listener.sock.fileno() for listener in self._listeners]
        readers += [c.fd for c in self._connections.values()]
        checker_fd = self._checker.out_fd
        if checker_fd is not None:
            readers.append(checker_fd)
        writers = [c.fd for c in self._connections.values() if c.outbox.pending]
        checker_out = self._checker.outbox
        if checker_out is not None and checker_out.pending and checker_fd is not None:
            writers.append(checker_out.fd)
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if not readable and not writable:
            return
        by_fd = {c.fd: c for c in self._connections.values()}
        for fd in writable:
            if fd in by_fd:
                by_fd[fd].outbox.write_some()
            elif checker_out is not None and fd == checker_out.fd:
                checker_out.write_some()
        for fd in readable:
            if fd == checker_fd:
                self._read_verdicts()
            elif fd in by_fd:
                self._read(by_fd[fd])
            else:
                for listener in self._listeners:
                    if listener.sock.fileno() == fd:
                        self._accept(listener)

    def _accept(self, listener: Listener) -> None:
        while True:
            try:
                sock, peer = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving the others
                log.warning("sampler.accept_failed", error=str(exc))
                return
            self._next_ident += 1
            connection = _Connection(
                sock, self._next_ident, listener.transport, peer_name(listener, peer)
            )
            self._connections[connection.fd] = connection
            if len(self._connections) > MAX_CONNECTIONS:
                self._deny(connection, f"the host sampler serves at most {MAX_CONNECTIONS} clients")

    # -- connections -----------------------------------------------------------

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            connection.outbox.broken = f"peer gone ({exc.strerror})"
            return
        if not data:
            connection.outbox.broken = connection.outbox.broken or "peer gone"
            return
        try:
            commands = [decode_command(body) for body in connection.reader.feed(data)]
        except (msgspec.DecodeError, ValueError) as exc:
            self._deny(connection, f"corrupt frame: {exc}")
            return
        for command in commands:
            if connection.closing or connection.outbox.broken:
                break
            self._handle(connection, command)
        connection.outbox.write_some()

    def _handle(self, connection: _Connection, command: HostCommand) -> None:
        outbox = connection.outbox
        match command:
            case StatusQuery():
                outbox.send(self.status())
            case Attach():
                self._attach(connection, command)
            case Register():
                self._register(connection, command)
            case Unregister(key=key):
                registration = outbox.registrations.get(key)
                if registration is not None:
                    self._loop.end(registration, "unregistered")
                elif key in connection.pending:
                    connection.pending.discard(key)  # the verdict will be dropped
                    outbox.send(Ended(key=key, reason="unregistered", samples=0, late=0))
                else:
                    outbox.send(Ended(key=key, reason="not registered", samples=0, late=0))
            case Shutdown():  # this connection is done; the sampler lives on
                self._loop.end_all(outbox, "shutdown")
                connection.pending.clear()
                connection.closing = True

    def _attach(self, connection: _Connection, attach: Attach) -> None:
        if connection.session is not None:
            self._deny(connection, "this connection is attached already")
        elif attach.protocol != PROTOCOL_VERSION:
            self._deny(
                connection,
                f"this host sampler (pid {os.getpid()}) speaks protocol {PROTOCOL_VERSION}, "
                f"the client {attach.protocol}: stop it with `faaslab sampler stop` once its "
                "deployments are done, and the next client starts its own",
            )
        elif not attach.deployment:
            self._deny(connection, "Attach names no deployment")
        elif connection.transport == "tcp" and not attach.token:
            self._deny(connection, "a TCP client must present its deployment's sampler token")
        else:
            connection.session = attach
            connection.outbox.send(Hello(pid=os.getpid(), priority=self.priority))
            log.info(
                "sampler.attached",
                deployment=attach.deployment,
                client=attach.client or connection.peer,
                transport=connection.transport,
            )

    def _deny(self, connection: _Connection, error: str) -> None:
        log.warning("sampler.denied", peer=connection.peer, error=error)
        connection.outbox.send(Denied(error=error))
        connection.closing = True

    def _register(self, connection: _Connection, register: Register) -> None:
        outbox, key = connection.outbox, register.key
        session = connection.session
        refusal = None
        if session is None:
            refusal = "attach first: a connection names its deployment before it registers"
        elif key in outbox.registrations or key in connection.pending:
            refusal = f"key {key!r} is already registered"
        elif register.interval_ns < MIN_WAKE_PERIOD_NS:
            refusal = (
                f"interval {register.interval_ns / 1e6:g} ms is below the host sampler's "
                f"floor of {MIN_WAKE_PERIOD_NS / 1e6:g} ms"
            )
        elif len(outbox.registrations) + len(connection.pending) >= MAX_FILES_PER_CONNECTION:
            refusal = f"a connection samples at most {MAX_FILES_PER_CONNECTION} files"
        if refusal is not None or session is None:
            outbox.send(Refused(key=key, error=refusal or ""))
            return
        self._next_request += 1
        request = AccessRequest(
            request=self._next_request,
            deployment=session.deployment,
            container=register.container,
            path=register.path,
            token=session.token,
            engine=session.engine if connection.transport == "unix" else self._engine,
            require_token=connection.transport == "tcp",
        )
        if not self._checker.alive:
            self._checker_died()
        connection.pending.add(key)
        self._requests[request.request] = (connection, register)
        self._checker.ask(request)

    def _read_verdicts(self) -> None:
        verdicts = self._checker.read()
        if verdicts is None:
            self._checker_died()
            return
        for verdict in verdicts:
            self._decided(verdict)

    def _checker_died(self) -> None:
        """Refuse what the dead checker was asked; the next Register starts another."""
        if self._requests:
            log.warning("sampler.checker_died", pending=len(self._requests))
        self._checker.stop()
        for connection, register in self._requests.values():
            if register.key in connection.pending:
                connection.pending.discard(register.key)
                connection.outbox.send(
                    Refused(key=register.key, error="the access checker died; try again")
                )
                connection.outbox.write_some()
        self._requests.clear()

    def _decided(self, verdict: Verdict) -> None:
        found = self._requests.pop(verdict.request, None)
        if found is None:
            return
        connection, register = found
        key = register.key
        if key not in connection.pending or self._connections.get(connection.fd) is not connection:
            return  # unregistered meanwhile, or the client is gone
        connection.pending.discard(key)
        outbox = connection.outbox
        if verdict.error:
            outbox.send(Refused(key=key, error=verdict.error))
        else:
            opened = self._loop.open(verdict.usage)
            if isinstance(opened, str):
                outbox.send(Refused(key=key, error=opened))
            else:
                registration = self._loop.add(
                    outbox, key, verdict.usage, opened, register.interval_ns
                )
                outbox.send(
                    Registered(key=key, t0_ns=registration.group.deadline, path=verdict.usage)
                )
        outbox.write_some()

    def _reap(self) -> None:
        """Close connections whose client left, was dropped, or is done."""
        for connection in list(self._connections.values()):
            outbox = connection.outbox
            done = connection.closing and not outbox.pending
            if outbox.broken is None and not done:
                continue
            files = len(outbox.registrations)
            self._loop.end_all(outbox, "client gone")
            del self._connections[connection.fd]
            connection.sock.close()
            session = connection.session
            if session is not None:  # status queries and probes come and go unlogged
                log.info(
                    "sampler.detached",
                    deployment=session.deployment,
                    files_dropped=files,
                    why=outbox.broken or "done",
                )

    def close(self) -> None:
        """End every key (the clients hear why), bounded; stop the checker."""
        for connection in self._connections.values():
            self._loop.end_all(connection.outbox, "sampling process stopped")
        deadline = time.monotonic() + 1.0  # bounded: a stalled client must not hold us
        while time.monotonic() < deadline:
            waiting = [c for c in self._connections.values() if c.outbox.pending]
            if not waiting:
                break
            _, writable, _ = select.select([], [c.fd for c in waiting], [], 0.1)
            for connection in waiting:
                if connection.fd in writable:
                    connection.outbox.write_some()
        for connection in self._connections.values():
            connection.sock.close()
        self._connections.clear()
        self._checker.stop()


# -- the process ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faaslab._sampling._hostd")
    parser.add_argument("--socket", help="unix socket path (default: in faaslab's state dir)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="also listen on TCP (token required)")
    parser.add_argument(
        "--idle-exit", type=float, help="exit after this long with no deployment (s, 0 = never)"
    )
    parser.add_argument(
        "--engine",
        default=os.environ.get("DOCKER_HOST", ""),
        help="the engine TCP clients are checked against",
    )
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--daemonize", action="store_true")
    args = parser.parse_args(argv)
    if args.daemonize:
        daemonize()
    configure_logging("json", debug=False)
    ready = os.fdopen(args.ready_fd, "wb") if args.ready_fd is not None else None

    def report(message: DaemonReady) -> None:
        if ready is not None and not ready.closed:
            ready.write(msgspec.json.encode(message) + b"\n")
            ready.close()

    try:
        return _serve(args, report)
    except Exception as exc:
        report(DaemonReady(ok=False, error=f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        report(DaemonReady(ok=False, error="the host sampler ended before it was ready"))


def _serve(args: argparse.Namespace, report: Callable[[DaemonReady], None]) -> int:
    path = args.socket or default_address().path
    pid_path = Path(path).with_suffix(".pid")
    locked = lock_pid_file(pid_path)
    if isinstance(locked, str):
        report(DaemonReady(ok=False, error=locked))
        return 1
    listeners = [unix_listener(path)]
    if args.tcp:
        listeners.append(tcp_listener(args.tcp))
    idle = idle_exit_from_environment() if args.idle_exit is None else args.idle_exit
    daemon = HostDaemon(listeners, idle_exit_s=idle, engine=args.engine)
    daemon.start_checker()  # before we turn real-time
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _terminate(signum: int, frame: object) -> None:
        daemon.stopping = True

    signal.signal(signal.SIGTERM, _terminate)
    daemon.priority = raise_priority()
    tighten_timers()
    gc.freeze()
    os.ftruncate(locked, 0)
    os.pwrite(locked, f"{os.getpid()}\n".encode(), 0)
    tcp_port = int(listeners[-1].address.rsplit(":", 1)[1]) if args.tcp else 0
    log.info(
        "sampler.serving",
        pid=os.getpid(),
        priority=daemon.priority,
        listening=[listener.address for listener in listeners],
        idle_exit_s=idle,
    )
    report(DaemonReady(ok=True, pid=os.getpid(), tcp_port=tcp_port))
    try:
        daemon.run()
    finally:
        # The socket goes first, so a newcomer starts a successor (which
        # waits for our pid lock, released last) instead of reaching us.
        for listener in listeners:
            listener.close()
        daemon.close()
        os.close(locked)
        log.info("sampler.stopped", pid=os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
