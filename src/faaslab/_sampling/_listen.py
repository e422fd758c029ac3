"""Where the host sampler listens, and what makes it the only one.

- :class:`Listener` — a listening socket (unix or TCP) and its address;
  :func:`unix_listener` creates the socket file 0600 (umask at ``bind``, so
  no window in which another user may connect) and removes only its own.
- :func:`lock_pid_file` — ``sampler.pid``, held locked by the live sampler
  for its whole life: a second sampler cannot start beside it.
- :func:`daemonize` — leave the starter: fork, the parent exits (its
  starter reaps it), the child leads a session of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Literal

from ._address import parse_address

__all__ = (
    "Listener",
    "Transport",
    "daemonize",
    "lock_pid_file",
    "peer_name",
    "tcp_listener",
    "unix_listener",
)

#: Waiting for a predecessor that is still exiting to let go of sampler.pid.
PID_LOCK_WAIT_S = 5.0

Transport = Literal["unix", "tcp"]


class Listener:
    """A listening socket: a transport and its address."""

    def __init__(
        self, sock: socket.socket, transport: Transport, address: str, path: str = ""
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.transport: Transport = transport
        self.address = address
        #: A unix listener's socket file and its inode (to remove only our own).
        self.path = path
        self.inode = os.stat(path).st_ino if path else 0

    def close(self) -> None:
        if self.path:
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self.inode:
                    os.unlink(self.path)
        self.sock.close()


def peer_name(listener: Listener, peer: object) -> str:
    if listener.transport == "tcp" and isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return listener.address


def lock_pid_file(path: Path) -> int | str:
    """Hold `path` locked for our life: the descriptor, or why another sampler has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + PID_LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                return f"another host sampler (pid {holder}) holds {path}"
            time.sleep(0.05)  # a predecessor is exiting: bounded by the deadline


def unix_listener(path: str) -> Listener:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a dead predecessor's: we hold the pid lock
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # born 0600: no window in which others may connect
    try:
        sock.bind(path)
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    sock.listen(128)
    return Listener(sock, "unix", f"unix://{path}", path)


def tcp_listener(text: str) -> Listener:
    address = parse_address(f"tcp://{text}")
    sock = socket.create_server((address.host, address.port), reuse_port=False, backlog=128)
    host, port = sock.getsockname()[:2]
    return Listener(sock, "tcp", f"tcp://{host}:{port}")


def daemonize() -> None:
    """Fork; the parent exits at once (its starter reaps it); the child leads
    a session of its own, so nobody's terminal or process group reaches it."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
