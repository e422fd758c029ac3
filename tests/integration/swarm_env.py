"""A private Docker Swarm for tests: engines in network namespaces this test creates.

Never touches the shared engine beyond reading images from it (``docker
save``). Every node is a private ``dockerd`` (own data root, exec root,
pidfile, socket, address pool) started by ``nsenter --net`` in a network
namespace of its own; the namespaces hang off a bridge in a switch
namespace, and the host joins that bridge through one veth. All addresses
are in one 10.251.<n>.0/24 chosen free at start:

    host          10.251.<n>.1   (the test's side; a registry listens here)
    node k        10.251.<n>.<k + 2>

Everything made is removed by name or pid on exit, even after a failure:
engines stopped by pid (their containerd and shims too), mounts under the
private root unmounted, the root deleted, namespaces and links deleted.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from privateengine import kill_processes_under

from faaslab._control import StatusReply, StatusRequest, connect
from faaslab._state import load_state

#: What the swarm tests need of the machine.
TOOLS = ("ip", "nsenter", "dockerd", "docker")


def missing_prerequisites() -> str | None:
    """Why a private swarm cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "private swarms need root (network namespaces, dockerd)"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/system-deps.sh installs it)"
    return None


def run(*command: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        list(command), capture_output=True, text=True, check=check, timeout=120, **kwargs
    )


@dataclass
class SwarmNode:
    index: int
    netns: str
    address: str
    root: Path
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("docker", "-H", self.endpoint, *args, check=check)


@dataclass
class PrivateSwarm:
    """``with PrivateSwarm(2, registry_port=5000) as swarm: ...``"""

    size: int
    images: Sequence[str] = ()
    #: Trust a registry at the host's address on this port (multi-node images).
    registry_port: int | None = None
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes: list[SwarmNode] = field(default_factory=list)
    subnet: int = 0
    _made: list[tuple[str, str]] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return Path(f"/tmp/fsw{self.tag}")

    @property
    def host_address(self) -> str:
        return f"10.251.{self.subnet}.1"

    @property
    def registry(self) -> str:
        return f"{self.host_address}:{self.registry_port}"

    @property
    def manager(self) -> SwarmNode:
        return self.nodes[0]

    def __enter__(self) -> PrivateSwarm:
        try:
            self._network()
            for node in self.nodes:
                self._start_engine(node)
            for node in self.nodes:
                self._wait_engine(node)
            self._form_swarm()
            self._load_images()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- network --------------------------------------------------------------------

    def _free_subnet(self) -> int:
        used = run("ip", "-4", "-o", "addr").stdout + run("ip", "-4", "route").stdout
        candidates = [n for n in range(10, 250) if f"10.251.{n}." not in used]
        return random.choice(candidates)

    def _network(self) -> None:
        self.subnet = self._free_subnet()
        self.root.mkdir(mode=0o711)
        self._made.append(("root", str(self.root)))
        switch = f"fsw{self.tag}s"
        run("ip", "netns", "add", switch)
        self._made.append(("netns", switch))
        run("ip", "-n", switch, "link", "set", "lo", "up")
        run("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", switch, "link", "set", "br0", "up")
        host_link = f"fsw{self.tag}h"
        run("ip", "link", "add", host_link, "type", "veth", "peer", "name", f"fsw{self.tag}p")
        self._made.append(("link", host_link))
        run("ip", "link", "set", f"fsw{self.tag}p", "netns", switch)
        run("ip", "-n", switch, "link", "set", f"fsw{self.tag}p", "master", "br0", "up")
        run("ip", "addr", "add", f"{self.host_address}/24", "dev", host_link)
        run("ip", "link", "set", host_link, "up")
        for k in range(self.size):
            netns = f"fsw{self.tag}n{k}"
            run("ip", "netns", "add", netns)
            self._made.append(("netns", netns))
            inner, outer = f"fsw{self.tag}{k}a", f"fsw{self.tag}{k}b"
            run("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            run("ip", "link", "set", inner, "netns", netns)
            run("ip", "link", "set", outer, "netns", switch)
            run("ip", "-n", switch, "link", "set", outer, "master", "br0", "up")
            address = f"10.251.{self.subnet}.{k + 2}"
            run("ip", "-n", netns, "link", "set", "lo", "up")
            run("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", inner)
            run("ip", "-n", netns, "link", "set", inner, "up")
            node_root = self.root / str(k)
            node_root.mkdir()
            self.nodes.append(SwarmNode(k, netns, address, node_root))

    # -- engines ----------------------------------------------------------------------

    def _start_engine(self, node: SwarmNode) -> None:
        command = [
            "nsenter",
            f"--net=/var/run/netns/{node.netns}",
            "dockerd",
            f"--data-root={node.root / 'data'}",
            f"--exec-root={node.root / 'x'}",
            f"--pidfile={node.root / 'dockerd.pid'}",
            f"-H=unix://{node.socket}",
            "--default-address-pool=base=10.252.0.0/16,size=24",
            "--bridge=none",
            "--log-level=warn",
        ]
        if self.registry_port is not None:
            command.append(f"--insecure-registry={self.registry}")
        log = (node.root / "dockerd.log").open("wb")
        # nsenter execs dockerd: this pid is the engine's.
        node.process = subprocess.Popen(
            command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()

    def _wait_engine(self, node: SwarmNode) -> None:
        deadline = time.monotonic() + 60
        while node.docker("version", "--format", "{{.Server.Version}}", check=False).returncode:
            assert node.process is not None
            if node.process.poll() is not None or time.monotonic() > deadline:
                log = (node.root / "dockerd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"private dockerd {node.index} did not answer:\n{log}")
            time.sleep(0.2)

    def _form_swarm(self) -> None:
        manager = self.manager
        manager.docker(
            "swarm", "init",
            f"--advertise-addr={manager.address}",
            f"--listen-addr={manager.address}:2377",
            "--default-addr-pool=10.253.0.0/16",
        )  # fmt: skip
        token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        for node in self.nodes[1:]:
            node.docker(
                "swarm", "join", f"--token={token}",
                f"--advertise-addr={node.address}", f"--listen-addr={node.address}:2377",
                f"{manager.address}:2377",
            )  # fmt: skip
        for node in self.nodes:
            node.node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
            manager.docker("node", "update", "--label-add", f"faaslab-test=n{node.index}",
                           node.node_id)  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            states = manager.docker("node", "ls", "--format", "{{.Status}}").stdout.split()
            if states.count("Ready") == self.size:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"swarm nodes not ready: {states}")
            time.sleep(0.2)

    def _load_images(self) -> None:
        """Images reach the manager only (the registry carries them further)."""
        if not self.images:
            return
        save = subprocess.Popen(
            ["docker", "-H", "unix:///var/run/docker.sock", "save", *self.images],
            stdout=subprocess.PIPE,
        )
        load = subprocess.run(
            ["docker", "-H", self.manager.endpoint, "load"],
            stdin=save.stdout,
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"docker save | load failed: {load.stderr.decode()[-500:]}")

    # -- teardown ---------------------------------------------------------------------

    def _stop_engine(self, node: SwarmNode) -> None:
        process = node.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            containers = node.docker("ps", "-aq", "--no-trunc", check=False).stdout.split()
            if containers:
                node.docker("rm", "-f", *containers, check=False)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)

    def _unmount(self) -> None:
        root = str(self.root)
        mounts = []
        with open("/proc/self/mountinfo") as info:
            for line in info:
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(root):
                    mounts.append(point)
        for point in sorted(mounts, key=len, reverse=True):
            run("umount", "-l", point, check=False)

    def close(self) -> None:
        for node in reversed(self.nodes):
            with contextlib.suppress(Exception):
                self._stop_engine(node)
        kill_processes_under(self.root)  # containerd and shims of our engines
        self._unmount()
        for kind, name in reversed(self._made):
            if kind == "netns":
                run("ip", "netns", "del", name, check=False)
            elif kind == "link":
                run("ip", "link", "del", name, check=False)
            elif kind == "root":
                shutil.rmtree(name, ignore_errors=True)
        self._made.clear()


@contextlib.contextmanager
def private_swarm(
    size: int, images: Sequence[str], *, registry_port: int | None = None
) -> Iterator[PrivateSwarm]:
    with PrivateSwarm(size, images=images, registry_port=registry_port) as swarm:
        yield swarm


def faaslab(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m faaslab ARGS`` with ``env`` over this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "faaslab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


def labeled(node: SwarmNode, deployment_id: str) -> list[str]:
    """Everything on one private engine still labeled with the deployment."""
    label = f"label=faaslab.deployment={deployment_id}"
    found = []
    for kind, command in (
        ("service", ("service", "ls", "-q", "--filter", label)),
        ("container", ("ps", "-aq", "--filter", label)),
        ("network", ("network", "ls", "-q", "--filter", label)),
        ("volume", ("volume", "ls", "-q", "--filter", label)),
        ("secret", ("secret", "ls", "-q", "--filter", label)),
    ):
        result = node.docker(*command, check=False)
        if result.returncode == 0:
            found += [f"{kind} {name}" for name in result.stdout.split()]
    return found


def wait_samples(state_path: Path, at_least: int, timeout: float = 60) -> dict[str, int]:
    """Until every instance has ``at_least`` samples (the supervisor's status)."""

    async def ask() -> dict[str, int]:
        state = load_state(state_path)
        assert state.supervisor is not None
        async with connect(Path(state.supervisor.socket)) as client:
            reply = await client.request(StatusRequest())
        assert isinstance(reply, StatusReply)
        return {m.instance: m.samples for m in reply.memory}

    deadline = time.monotonic() + timeout
    while True:
        counts = anyio.run(ask)
        if counts and min(counts.values()) >= at_least:
            return counts
        if time.monotonic() > deadline:
            log = state_path.with_name(f"{state_path.name}.d") / "supervisor.log"
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            raise AssertionError(f"samples after {timeout} s: {counts}\n" + "\n".join(tail))
        time.sleep(0.5)
