"""A deployment over two Swarm nodes: tasks on both, calls to both, samples from both.

Two private engines in two network namespaces of this test join one swarm
(``swarm_env``). Images reach the manager with ``docker save | docker load``
and the second node only through faaslab's own registry (Debian's
``docker-registry``, started on the host's test address and stopped by pid).
With several nodes the tasks publish in host mode and are reached at their
nodes' addresses, which the test created.
"""

from __future__ import annotations

import collections
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from swarm_env import PrivateSwarm, faaslab, labeled, missing_prerequisites, wait_samples

from faaslab._aggregate import report_path_for
from faaslab._backend import open_engine
from faaslab._runtime import BASE_IMAGE, RUNTIME_IMAGE, SAMPLER_IMAGE, ensure_sampler_image
from faaslab._state import load_state
from faaslab._storage import storage_image

REGISTRY_PORT = 5000


def _missing() -> str | None:
    if shutil.which("docker-registry") is None:
        return "docker-registry is not installed (scripts/system-deps.sh installs it)"
    return missing_prerequisites()


pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(_missing() is not None, reason=str(_missing())),
]

FUNCTION = """
import socket

def handler(event):
    block = bytearray(event.get("mb", 0) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"host": socket.gethostname()}
"""


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateSwarm]:
    async def build() -> None:
        async with open_engine("unix:///var/run/docker.sock") as shared:
            await ensure_sampler_image(shared)

    anyio.run(build)
    images = [BASE_IMAGE, RUNTIME_IMAGE, storage_image(), SAMPLER_IMAGE]
    env = {"FAASLAB_STATE_DIR": str(tmp_path_factory.mktemp("registry-state"))}
    with PrivateSwarm(2, images=images, registry_port=REGISTRY_PORT) as private:
        up = faaslab("registry", "up", "--address", private.registry, env=env)
        assert up.returncode == 0, up.stderr
        try:
            yield private
        finally:
            down = faaslab("registry", "down", "--address", private.registry, env=env)
            assert "stopped" in down.stdout, down.stdout + down.stderr


@pytest.mark.timeout(600)
def test_tasks_calls_and_samples_on_both_nodes(
    swarm: PrivateSwarm,
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
) -> None:
    env = {"DOCKER_HOST": swarm.manager.endpoint, "FAASLAB_STATE_DIR": str(tmp_path / "state")}
    worker = swarm.nodes[1]
    assert worker.docker("image", "ls", "-q", RUNTIME_IMAGE).stdout.strip() == ""
    code = make_function("fn", FUNCTION)
    out = tmp_path / "d.json"
    stats = tmp_path / "memory_stats.json"
    try:
        started = faaslab(
            "start", str(code), "--backend", "swarm", "--deployments", "4",
            "--measure-interval", "1", "--registry", swarm.registry,
            "--id", deployment_id, "-o", str(out), env=env,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        state = load_state(out)
        hosts = {record.url.split(":")[0] for record in state.functions}
        assert hosts == {node.address for node in swarm.nodes}

        tasks = swarm.manager.docker(
            "service", "ps", *[f"faaslab-{deployment_id}-fn-{i}" for i in range(4)],
            "--filter", "desired-state=running", "--format", "{{.Node}} {{.ID}}",
        ).stdout.splitlines()  # fmt: skip
        assert len(tasks) == 4

        invoked = faaslab(
            "invoke", str(out), "fn", "-n", "40", "--concurrency", "4", "--event", '{"mb": 4}',
            env=env,
        )  # fmt: skip
        assert invoked.returncode == 0, invoked.stdout + invoked.stderr
        calls = [json.loads(line) for line in invoked.stdout.splitlines()]
        by_instance = collections.Counter(call["instance"] for call in calls)
        assert set(by_instance) == {f"fn-{i}" for i in range(4)}

        wait_samples(out, 2000)
        # The second node pulled the runtime from the registry, by digest.
        digests = worker.docker("image", "ls", "--digests", "--format", "{{.Repository}}")
        assert f"{swarm.registry}/faaslab/python" in digests.stdout.split()

        stopped = faaslab("stop", str(out), str(stats), env=env)
        assert stopped.returncode == 0, stopped.stderr
    finally:
        if out.exists() and load_state(out).status != "stopped":
            faaslab("stop", str(out), str(tmp_path / "cleanup.json"), env=env)

    report = json.loads(report_path_for(stats).read_text())
    nodes = collections.Counter(i["node"] for i in report["instances"])
    assert set(nodes) == {node.node_id for node in swarm.nodes}, nodes
    assert {i["source"] for i in report["instances"]} == {"cgroup"}
    assert all(i["samples"] >= 2000 for i in report["instances"]), report["instances"]
    sebs = json.loads(stats.read_text())
    assert len([k for k in sebs if k != "precision_errors"]) == 4
    for node in swarm.nodes:
        assert labeled(node, deployment_id) == []
