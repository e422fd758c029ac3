"""Start and stop a Docker engine of faaslab's own when none answers.

faaslab never assumes an engine is running, and never starts a second one:
``engine up`` uses whatever answers at the endpoint (``DOCKER_HOST`` or the
local socket) and only when nothing answers, and only as root, starts
``dockerd`` with its pid file and log under faaslab's state directory.
``engine down`` stops only a daemon whose pid file faaslab wrote and whose
process is still that ``dockerd``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import anyio

from .._errors import EngineUnreachable, SystemSetupError
from .._util import state_dir
from ._docker import DEFAULT_ENDPOINT, engine_endpoint, open_engine

__all__ = ("EngineStatus", "engine_answers", "start_engine", "stop_engine")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class EngineStatus:
    """Outcome of :func:`start_engine`."""

    __slots__ = ("endpoint", "pid", "started")

    def __init__(self, endpoint: str, *, started: bool, pid: int | None = None) -> None:
        self.endpoint = endpoint
        self.started = started
        self.pid = pid


def _pid_file() -> Path:
    return state_dir() / "dockerd.pid"


def _log_file() -> Path:
    return state_dir() / "dockerd.log"


def engine_answers(endpoint: str | None = None) -> bool:
    """Whether an engine answers at ``endpoint`` now (one bounded attempt)."""

    async def ping() -> bool:
        try:
            with anyio.fail_after(10):
                async with open_engine(endpoint):
                    return True
        except (EngineUnreachable, TimeoutError):
            return False

    return anyio.run(ping)


def _log_tail(lines: int = 20) -> str:
    try:
        text = _log_file().read_text(errors="replace")
    except OSError:
        return "(no daemon log)"
    return "\n".join(text.splitlines()[-lines:])


def _our_daemon_pid() -> int | None:
    """The pid of the dockerd faaslab started, if it still runs."""
    try:
        pid = int(_pid_file().read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # The pid may have been reused by something else: trust it only if it is
    # still a dockerd that was given our pid file.
    if not cmdline or not cmdline[0].endswith(b"dockerd"):
        return None
    if str(_pid_file()).encode() not in cmdline:
        return None
    return pid


def start_engine() -> EngineStatus:
    """Make sure an engine answers; start ``dockerd`` only when none does."""
    endpoint = engine_endpoint()
    if engine_answers(endpoint):
        return EngineStatus(endpoint, started=False, pid=_our_daemon_pid())
    if os.environ.get("DOCKER_HOST"):
        raise SystemSetupError(
            f"no Docker engine answers at DOCKER_HOST={endpoint}; faaslab only starts a "
            "local engine when DOCKER_HOST is unset: start that engine, or unset DOCKER_HOST"
        )
    if os.geteuid() != 0:
        raise SystemSetupError(
            f"no Docker engine answers at {DEFAULT_ENDPOINT} and starting one needs root: "
            "run `sudo make engine`, or start Docker yourself (`sudo systemctl start docker`) "
            "and make sure your user may use it (group `docker`)"
        )
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise SystemSetupError(
            "dockerd is not installed: run `sudo apt-get install docker.io` (or `make setup`)"
        )
    log_path = _log_file()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [dockerd, "--pidfile", str(_pid_file())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # it outlives this command; `engine down` stops it
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemSetupError(
                f"dockerd exited with status {process.returncode} while starting; "
                f"last lines of {log_path}:\n{_log_tail()}"
            )
        if engine_answers(endpoint):
            return EngineStatus(endpoint, started=True, pid=process.pid)
        time.sleep(0.2)  # polling an external daemon for readiness, bounded above
    process.terminate()
    raise SystemSetupError(
        f"dockerd did not answer within {START_TIMEOUT_S:.0f} s; last lines of {log_path}:\n"
        f"{_log_tail()}"
    )


def stop_engine() -> int | None:
    """Stop the dockerd faaslab started; return its pid, or None when there was none."""
    pid = _our_daemon_pid()
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            break
        time.sleep(0.1)  # waiting for a process we do not parent: poll, bounded
    else:
        os.kill(pid, signal.SIGKILL)
    _pid_file().unlink(missing_ok=True)
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
