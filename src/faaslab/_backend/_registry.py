"""A container registry of faaslab's own, offline: Debian's ``docker-registry``.

When a swarm has more than one node, images reach the other nodes through a
registry (``_swarm`` pushes every image there and names it by digest).
``registry up --address HOST:PORT`` starts Debian's ``docker-registry``
(the CNCF distribution registry) listening on that address only, with its
data, configuration, log and pid file under faaslab's state directory; it
needs no network beyond that address. ``registry down`` stops only a
registry whose pid file faaslab wrote and whose process is still that
registry.

It speaks plain HTTP and has no authentication: give it an address only
the swarm's nodes reach, and list that address in every engine's
``insecure-registries`` (docs/scaling-out.md).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import msgspec

from .._errors import SpecError, SystemSetupError
from .._util import state_dir

__all__ = ("RegistryStatus", "parse_registry_address", "start_registry", "stop_registry")

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


class RegistryStatus(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    pid: int | None
    #: True when this call started it (False: it already answered).
    started: bool
    root: str


def parse_registry_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` with HOST an IP address (the registry listens there only)."""
    host, _, port = address.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        number = int(port)
    except ValueError:
        raise SpecError(f"registry address {address!r}: expected IP:PORT") from None
    if not 0 < number < 65536:
        raise SpecError(f"registry address {address!r}: port out of range")
    return host, number


def _root(address: str, root: Path | None) -> Path:
    if root is not None:
        return root
    host, port = parse_registry_address(address)
    return state_dir() / f"registry-{host.strip('[]').replace(':', '_')}-{port}"


def _config(address: str, data: Path) -> str:
    return f"""\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: {address}
"""


def _answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _is_registry(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"docker-registry" in cmdline


def start_registry(address: str, *, root: Path | None = None) -> RegistryStatus:
    """Start a registry on ``address`` unless one answers there already."""
    parse_registry_address(address)
    directory = _root(address, root)
    if _answers(address):
        return RegistryStatus(address=address, pid=None, started=False, root=str(directory))
    binary = shutil.which("docker-registry")
    if binary is None:
        raise SystemSetupError(
            "docker-registry is not installed: it carries images to the other nodes of a "
            "swarm; run `sudo apt-get install docker-registry` (or `make setup`)"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / "data").mkdir(exist_ok=True)
    config = directory / "config.yml"
    config.write_text(_config(address, directory / "data"))
    log_path = directory / "registry.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    (directory / "registry.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(address):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            process.wait()
            tail = log_path.read_text(errors="replace").splitlines()[-10:]
            raise SystemSetupError(
                f"docker-registry did not answer at {address} within {START_TIMEOUT_S:g} s; "
                f"its log {log_path}:\n" + "\n".join(tail)
            )
        time.sleep(0.1)
    return RegistryStatus(address=address, pid=process.pid, started=True, root=str(directory))


def stop_registry(address: str, *, root: Path | None = None) -> int | None:
    """Stop the registry faaslab started on ``address``; its pid, or None when there was none."""
    pid_file = _root(address, root) / "registry.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _is_registry(pid):
        pid_file.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _is_registry(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _is_registry(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid
