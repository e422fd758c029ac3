"""Deployments on a one-node Docker Swarm: a private engine in a namespace of the test.

The engine is a private ``dockerd`` in a network namespace this module
creates (``swarm_env``), initialised as a swarm on an address the test made
(10.251.<n>.2); the shared engine is only read from (its images). The host
reaches the tasks through the gateways published on that address, and the
node sampler reads this host's cgroup tree (one kernel).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from swarm_env import PrivateSwarm, SwarmNode, faaslab, labeled, missing_prerequisites, wait_samples

from faaslab._aggregate import report_path_for
from faaslab._backend import open_engine
from faaslab._runtime import BASE_IMAGE, RUNTIME_IMAGE, ensure_sampler_image
from faaslab._state import load_state
from faaslab._storage import storage_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(missing_prerequisites() is not None, reason=str(missing_prerequisites())),
]

ALLOC = """
def handler(event):
    block = bytearray(event.get("mb", 0) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"size": len(block)}
"""


def swarm_images() -> list[str]:
    async def build() -> None:
        async with open_engine("unix:///var/run/docker.sock") as shared:
            await ensure_sampler_image(shared)

    anyio.run(build)
    return [BASE_IMAGE, RUNTIME_IMAGE, storage_image(), "faaslab/sampler:3.11"]


@pytest.fixture(scope="module")
def swarm() -> Iterator[PrivateSwarm]:
    with PrivateSwarm(1, images=swarm_images()) as private:
        yield private


@pytest.fixture
def env(swarm: PrivateSwarm, tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_HOST": swarm.manager.endpoint, "FAASLAB_STATE_DIR": str(tmp_path / "state")}


def start_on(
    node: SwarmNode, code: Path, out: Path, deployment_id: str, env: dict[str, str], *options: str
) -> None:
    """``faaslab start CODE --backend swarm`` on the private swarm, at the node's address."""
    started = faaslab(
        "start", str(code), "--backend", "swarm", "--swarm-address", node.address,
        "--id", deployment_id, "-o", str(out), *options, env=env,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr


@pytest.mark.timeout(600)
def test_three_instances_sampled_at_1_ms_and_nothing_left(
    swarm: PrivateSwarm,
    env: dict[str, str],
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
) -> None:
    code = make_function("fn", ALLOC)
    out = tmp_path / "d.json"
    stats = tmp_path / "memory_stats.json"
    node = swarm.manager
    try:
        start_on(node, code, out, deployment_id, env, "--deployments", "3", "--measure-interval=1")
        services = node.docker(
            "service", "ls", "--filter", f"label=faaslab.deployment={deployment_id}",
            "--format", "{{.Name}}",
        ).stdout.split()  # fmt: skip
        assert {f"faaslab-{deployment_id}-fn-{i}" for i in range(3)} <= set(services)

        # Nothing through the mesh: no service publishes a port, gateways only on our address.
        for name in services:
            ports = node.docker("service", "inspect", name, "--format", "{{json .Endpoint.Ports}}")
            assert ports.stdout.strip() in ("null", "[]"), (name, ports.stdout)
        gateways = node.docker(
            "ps", "--filter", f"label=faaslab.deployment={deployment_id}",
            "--filter", "label=faaslab.role=gateway", "--format", "{{.Ports}}",
        ).stdout.splitlines()  # fmt: skip
        assert gateways
        assert all(line.startswith(f"{node.address}:") for line in gateways), gateways

        state = load_state(out)
        assert {record.url.split(":")[0] for record in state.functions} == {node.address}
        invoked = faaslab(
            "invoke", str(out), "fn", "-n", "30", "--concurrency", "3", "--event", '{"mb": 8}',
            env=env,
        )  # fmt: skip
        assert invoked.returncode == 0, invoked.stdout + invoked.stderr
        calls = [json.loads(line) for line in invoked.stdout.splitlines()]
        assert len(calls) == 30
        assert {call["instance"] for call in calls} == {"fn-0", "fn-1", "fn-2"}
        assert all(call["output"] == {"size": 8 * 1024 * 1024} for call in calls)

        wait_samples(out, 2000)
        stopped = faaslab("stop", str(out), str(stats), env=env)
        assert stopped.returncode == 0, stopped.stderr
    finally:
        if out.exists() and load_state(out).status != "stopped":
            faaslab("stop", str(out), str(tmp_path / "cleanup.json"), env=env)

    sebs = json.loads(stats.read_text())
    containers = {k: v for k, v in sebs.items() if k != "precision_errors"}
    assert set(containers) == {record.instance_id for record in state.functions}
    assert all(v["number of measurements"] >= 2000 for v in containers.values()), containers
    report = json.loads(report_path_for(stats).read_text())
    assert {i["source"] for i in report["instances"]} == {"cgroup"}
    assert {i["interval_ms"] for i in report["instances"]} == {1.0}
    assert {i["node"] for i in report["instances"]} == {node.node_id}
    # An 8 MB allocation shows in every container's peak.
    assert all(i["max_bytes"] > 8e6 for i in report["instances"])
    assert labeled(node, deployment_id) == []


@pytest.mark.timeout(600)
def test_a_killed_supervisor_is_cleaned_up_by_stop(
    swarm: PrivateSwarm,
    env: dict[str, str],
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
) -> None:
    code = make_function("fn", ALLOC)
    out = tmp_path / "d.json"
    node = swarm.manager
    start_on(node, code, out, deployment_id, env, "--deployments", "2", "--measure-interval", "1")
    state = load_state(out)
    assert state.supervisor is not None
    wait_samples(out, 1000)
    # What survives the supervisor is its last checkpoint: wait until it holds them.
    deadline = time.monotonic() + 30
    while True:
        checkpoint = load_state(out).checkpoint
        counts = [m["snapshot"]["count"] for m in checkpoint.measurements] if checkpoint else []
        if len(counts) == 2 and min(counts) >= 1000:
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)
    os.kill(state.supervisor.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{state.supervisor.pid}").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    listed = faaslab("ps", env=env)
    assert deployment_id in listed.stdout, listed.stdout
    assert "orphaned" in listed.stdout, listed.stdout
    assert any(kind.startswith("secret") for kind in labeled(node, deployment_id))

    stats = tmp_path / "after_crash.json"
    stopped = faaslab("stop", str(out), str(stats), env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "supervisor was gone" in stopped.stdout
    assert labeled(node, deployment_id) == []
    report = json.loads(report_path_for(stats).read_text())
    assert report["complete"] is False
    assert len(report["instances"]) == 2
    assert all(i["samples"] >= 1000 for i in report["instances"])


@pytest.mark.timeout(300)
def test_a_task_that_dies_is_replaced_by_the_supervisor_not_by_swarm(
    swarm: PrivateSwarm,
    env: dict[str, str],
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
) -> None:
    code = make_function("fn", ALLOC)
    out = tmp_path / "d.json"
    node = swarm.manager
    try:
        start_on(node, code, out, deployment_id, env, "--storage", "none")
        first = load_state(out).functions[0]
        node.docker("kill", first.instance_id)
        deadline = time.monotonic() + 60
        while True:
            record = load_state(out).functions[0]
            if record.restarts == 1 and record.state == "ready":
                break
            assert time.monotonic() < deadline, record
            time.sleep(0.2)
        assert record.instance_id != first.instance_id
        # The replacement is a new one-task service: Swarm restarted nothing itself.
        services = node.docker(
            "service", "ls", "--filter", f"label=faaslab.deployment={deployment_id}",
            "--format", "{{.Name}}",
        ).stdout.split()  # fmt: skip
        assert services == [f"faaslab-{deployment_id}-fn-0-r1"]
        invoked = faaslab("invoke", str(out), "fn", env=env)
        assert invoked.returncode == 0, invoked.stdout + invoked.stderr
        assert json.loads(invoked.stdout)["is_cold"] is True
    finally:
        if out.exists():
            faaslab("stop", str(out), str(tmp_path / "stats.json"), env=env)
    assert labeled(node, deployment_id) == []


def test_a_bad_swarm_address_is_refused_before_anything_exists(
    env: dict[str, str], tmp_path: Path, make_function: Callable[..., Path]
) -> None:
    code = make_function("fn", ALLOC)
    result = faaslab(
        "start", str(code), "--backend", "swarm", "--swarm-address", "not-an-ip",
        "-o", str(tmp_path / "d.json"), env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "swarm.address" in result.stderr


def test_the_docker_host_engine_is_no_swarm(
    tmp_path: Path, make_function: Callable[..., Path]
) -> None:
    """The shared engine is never a swarm manager: the backend says so and creates nothing."""
    code = make_function("fn", ALLOC)
    result = faaslab(
        "start", str(code), "--backend", "swarm", "-o", str(tmp_path / "d.json"),
        env={"DOCKER_HOST": "unix:///var/run/docker.sock"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "not a swarm manager" in result.stderr
