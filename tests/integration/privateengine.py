"""A dockerd of a test's own, that the test may stop and start at will.

The shared engine must never be restarted, so tests of an engine restart run
their deployment against this one. It has its own data root, exec root, pid
file, socket and address pool, and lives in a network namespace of its own:
whatever it does to bridges and ports (a dockerd started with ``--bridge=none``
deletes the host's ``docker0``; one restarted with an address pool deletes it
too) stays there. faaslab commands that talk to it run in that namespace as
well (``nsenter --net``), since its containers publish their ports on that
namespace's 127.0.0.1. Images reach it through ``docker save | docker load``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ("PrivateEngine", "private_engine_available")

#: Subnets of its networks: never overlapping the shared engine's (own namespace anyway).
ADDRESS_POOL = "base=10.213.0.0/16,size=24"
START_BOUND_S = 60.0
STOP_BOUND_S = 60.0


def private_engine_available() -> str | None:
    """Why a private engine cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    for tool in ("dockerd", "docker", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class PrivateEngine:
    """One private dockerd: start, stop (by its pid), restart; and commands in its namespace."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.netns = name
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log = root / "dockerd.log"
        self._pidfile = root / "docker.pid"
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------

    def create(self) -> None:
        (self.root / "data").mkdir(parents=True)
        (self.root / "exec").mkdir()
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self._in_netns(["ip", "link", "set", "lo", "up"], check=True)
        self.start()

    def start(self) -> float:
        """Start dockerd and wait until it answers; return when it did (monotonic)."""
        assert self._process is None or self._process.poll() is not None
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                self._nsenter(
                    [
                        "dockerd",
                        "--data-root", str(self.root / "data"),
                        "--exec-root", str(self.root / "exec"),
                        "--pidfile", str(self._pidfile),
                        "-H", self.host,
                        "--default-address-pool", ADDRESS_POOL,
                        "--bridge=none",
                        "--iptables=false",
                        "--ip-masq=false",
                    ]
                ),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_BOUND_S
        while not self.answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited: see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer within {START_BOUND_S} s")
            time.sleep(0.1)  # dockerd offers no readiness signal but its socket: poll it
        return time.monotonic()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop dockerd by its pid (SIGTERM: it stops its containers first, as a restart does)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def destroy(self) -> None:
        """Stop it and remove everything it had: processes, namespace, mounts, data."""
        self.stop()
        kill_processes_under(self.root)
        for mount in reversed(_mounts_under(self.root)):
            subprocess.run(["umount", "-l", mount], check=False)
        subprocess.run(["ip", "netns", "delete", self.netns], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- using it ----------------------------------------------------------------

    def answers(self) -> bool:
        return self.docker("version", check=False).returncode == 0

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", self.host, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def load_images(self, images: Sequence[str]) -> None:
        """Copy images from the shared engine (``docker save | docker load``)."""
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        assert save.stdout is not None
        load = subprocess.run(
            ["docker", "-H", self.host, "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            check=False,
        )
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"loading {images} failed: {load.stderr.decode(errors='replace')}")

    def faaslab(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``python -m faaslab ARGS`` in its namespace, talking to it."""
        return subprocess.run(
            self._nsenter([sys.executable, "-m", "faaslab", *args]),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_HOST": self.host},
            check=False,
        )

    def python(
        self, script: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``python -c SCRIPT ARGS`` in its namespace (where its published ports are)."""
        return subprocess.run(
            self._nsenter([sys.executable, "-c", script, *args]),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_HOST": self.host},
            check=False,
        )

    def objects(self, label: str) -> list[str]:
        """Containers, networks and volumes carrying ``label``."""
        found = []
        for kind in ("container", "network", "volume"):
            listing = ["ps", "-a"] if kind == "container" else [kind, "ls"]
            result = self.docker(*listing, "-q", "--filter", f"label={label}")
            found += [f"{kind} {line}" for line in result.stdout.split()]
        return found

    def _nsenter(self, command: list[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", *command]

    def _in_netns(self, command: list[str], check: bool) -> None:
        subprocess.run(self._nsenter(command), check=check)


def kill_processes_under(root: Path) -> None:
    """containerd and shims our dockerd started: their command lines name its root.

    A dockerd stopped with containers that outlive its shutdown timeout (or
    SIGKILLed past ``STOP_BOUND_S``) leaves their ``containerd-shim`` processes
    behind; they are ours, found by our root, and go with it.
    """
    prefix = str(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if prefix in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


@contextlib.contextmanager
def open_private_engine(root: Path, name: str, images: Sequence[str]) -> Iterator[PrivateEngine]:
    """A started private engine holding ``images``; everything of it removed at the end."""
    engine = PrivateEngine(root, name)
    try:
        engine.create()
        engine.load_images(images)
        yield engine
    finally:
        engine.destroy()
