"""Starting the host sampler on first use, once, whoever asks first.

:func:`ensure_host_sampler` is called (in a thread) by every client that
finds no sampler answering at a unix address: the library, the CLI, the
supervisor of ``faaslab start``, the experiment runner. Under an exclusive
lock on ``sampler.lock`` it looks again (someone else may just have started
one), and otherwise starts ``python -m faaslab._sampling._hostd
--daemonize``: that process forks, its parent exits at once (we reap it, so
no zombie is left to us) and the child, in a session of its own, holds
``sampler.pid`` locked for its whole life, listens, and writes one
:class:`~._protocol.DaemonReady` line to the pipe we passed it. Two
deployments starting at once therefore get one sampler, and a dead one is
replaced by the next client that needs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from .._errors import SamplingError
from .._util import read_line
from ._address import SamplerAddress
from ._protocol import DaemonReady, decode_ready

__all__ = ("answers", "ensure_host_sampler", "idle_exit_from_environment", "worker_environment")

#: How long a host sampler lives with no deployment attached, unless told.
IDLE_EXIT_S = 30.0
IDLE_ENV = "FAASLAB_SAMPLER_IDLE_S"
#: Poll period while waiting for another starter's lock (bounded by the timeout).
_LOCK_POLL_S = 0.02
_LOG_TAIL = 15


def idle_exit_from_environment() -> float:
    text = os.environ.get(IDLE_ENV, "").strip()
    try:
        return float(text) if text else IDLE_EXIT_S
    except ValueError:
        raise SamplingError(f"{IDLE_ENV}={text!r}: expected seconds (0 = never)") from None


def worker_environment() -> dict[str, str]:
    """Our environment, with this faaslab first on the child's path (so that a
    source checkout samples with the same code it runs)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_root + (os.pathsep + existing if existing else "")
    return env


def answers(address: SamplerAddress, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at a unix address."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(address.path)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SamplingError(
                        f"{path} stayed locked for {timeout:g} s: another process is "
                        "starting the host sampler and does not finish"
                    ) from None
                time.sleep(_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


def ensure_host_sampler(
    address: SamplerAddress, *, idle_exit_s: float | None = None, timeout: float = 30.0
) -> int | None:
    """Make sure a host sampler answers at `address`; the pid of the one we
    started, or None when one was already there."""
    if address.kind != "unix":
        raise SamplingError(
            f"no host sampler answers at {address}: a TCP sampler is not ours to start"
        )
    directory = Path(address.path).parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if answers(address):
        return None
    with _locked(address.beside(".lock"), timeout):
        if answers(address):
            return None
        return _spawn(
            address, idle_exit_from_environment() if idle_exit_s is None else idle_exit_s, timeout
        )


def _spawn(address: SamplerAddress, idle_exit_s: float, timeout: float) -> int:
    log_path = address.beside(".log")
    read_fd, write_fd = os.pipe()
    try:
        with open(log_path, "ab") as log_file:
            os.chmod(log_path, 0o600)
            starter = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "faaslab._sampling._hostd",
                    "--socket",
                    address.path,
                    "--idle-exit",
                    str(idle_exit_s),
                    "--ready-fd",
                    str(write_fd),
                    "--daemonize",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                pass_fds=(write_fd,),
                env=worker_environment(),
                start_new_session=True,  # Ctrl-C in our terminal does not reach it
            )
    except OSError as exc:
        os.close(read_fd)
        raise SamplingError(f"cannot start the host sampler: {exc}") from exc
    finally:
        os.close(write_fd)
    try:
        line = read_line(read_fd, timeout)
    except TimeoutError:
        raise SamplingError(f"the host sampler did not report ready within {timeout:g} s") from None
    finally:
        os.close(read_fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            starter.wait(timeout=5)  # the intermediate process exits at once: reap it
    if not line:
        tail = log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL:]
        raise SamplingError(
            f"the host sampler ended before it was ready; its log {log_path}:\n" + "\n".join(tail)
        )
    try:
        ready: DaemonReady = decode_ready(line)
    except msgspec.DecodeError as exc:
        raise SamplingError(f"the host sampler reported nonsense: {exc}") from exc
    if not ready.ok:
        raise SamplingError(f"the host sampler could not start: {ready.error}")
    return ready.pid
