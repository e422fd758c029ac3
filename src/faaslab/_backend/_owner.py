"""Which process owns a deployment, and whether it is still alive.

Every engine object carries ``faaslab.owner=<pid>:<start time>``; the start
time (from ``/proc/<pid>/stat``) makes the token immune to pid reuse, so
`ps` and `gc` can tell a live deployment from an orphan left by a crash.
"""

from __future__ import annotations

import os
import select
from pathlib import Path

__all__ = ("owner_alive", "owner_token", "process_start_time", "wait_owner_gone")


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is dead for our purposes
        return None
    return fields[19]


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{process_start_time(pid) or '?'}"


def owner_alive(token: str | None) -> bool:
    """Whether the process named by an owner token still runs (on this host)."""
    if not token or ":" not in token:
        return False
    pid_text, started = token.split(":", 1)
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return process_start_time(pid) == started


def wait_owner_gone(token: str | None, timeout: float) -> bool:
    """Block until the process named by an owner token has exited; False on timeout.

    Waits on a pidfd (readable once the process exits), so nothing is polled;
    a process that is not ours to wait for still signals its exit this way.
    """
    if not owner_alive(token):
        return True
    assert token is not None
    pid = int(token.split(":", 1)[0])
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        # The pid could have been reused between the check and the open.
        if not owner_alive(token):
            return True
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable) or not owner_alive(token)
    finally:
        os.close(fd)
