"""The create bodies of every container faaslab starts: the sandbox, without Docker.

The integration test (``test_sandbox.py``) checks the same on live containers
the way docker-bench-security does; this pins what each body asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faaslab._backend import FUNCTION_USER, PIDS_LIMIT, cpu_shares
from faaslab._function import InstanceContext, container_config
from faaslab._runtime._pipconfig import PipSettings
from faaslab._runtime._requirements import _pip_container
from faaslab._spec import FunctionSpec, StorageSpec
from faaslab._storage._server import container_config as storage_config
from faaslab._storage._server import seaweedfs_recipe


def assert_hardened(host: dict[str, Any], memory_mb: int, cpus: float) -> None:
    """What CIS section 5 asks of every container's HostConfig."""
    assert host["Memory"] == host["MemorySwap"] == memory_mb * 1024 * 1024  # 5.11, no swap
    assert host["CpuShares"] == cpu_shares(cpus) > 0  # 5.12
    assert host["NanoCpus"] == int(cpus * 1e9)
    assert host["ReadonlyRootfs"] is True  # 5.13
    assert host["Privileged"] is False  # 5.5
    assert host["CapDrop"] == ["ALL"]  # 5.4: nothing added
    assert "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges"]  # 5.26; 5.22: no seccomp=unconfined
    assert host["PidsLimit"] == PIDS_LIMIT  # 5.29
    for mode in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupParent"):  # 5.16/17/21/31/25
        assert mode not in host
    # 5.10, 5.30; one-shot containers get theirs from run_to_exit(own_network=True).
    assert host.get("NetworkMode", "own") not in ("host", "bridge", "default")


@pytest.fixture
def function(tmp_path: Path) -> FunctionSpec:
    (tmp_path / "function.py").write_text("def handler(event):\n    return {}\n")
    return FunctionSpec(name="fn", code=str(tmp_path), memory_mb=128, cpus=0.5, tmp_mb=64)


CONTEXT = InstanceContext(
    deployment_id="d1",
    network="faaslab-d1",
    image="faaslab/python:3.11",
    start_timeout_s=30.0,
    stop_grace_s=2.0,
    remove=True,
)


def test_a_function_container_is_sandboxed_as_on_lambda(function: FunctionSpec) -> None:
    body = container_config(function, "fn-0", CONTEXT, 0)
    host = body["HostConfig"]
    assert_hardened(host, 128, 0.5)
    assert body["User"] == FUNCTION_USER == "10001:10001"
    assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"}
    assert host["Binds"][0].endswith(":/function/function:ro")
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}  # 5.14
    env = dict(item.split("=", 1) for item in body["Env"])
    assert (env["HOME"], env["FAASLAB_TMP_MB"]) == ("/tmp", "64")
    health = body["Healthcheck"]
    assert health["Test"][:3] == ["CMD", "bash", "-c"]
    assert "GET /alive" in health["Test"][3]
    assert health["Interval"] == 30 * 10**9
    assert health["StartPeriod"] == 30 * 10**9
    # Probed every 0.5 s while starting: healthy as soon as it answers (Swarm waits for it).
    assert health["StartInterval"] == 5 * 10**8


def test_a_replacement_asks_for_its_predecessors_port(function: FunctionSpec) -> None:
    body = container_config(function, "fn-0", CONTEXT, 3, host_port=32770)
    assert body["HostConfig"]["PortBindings"]["8080/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": "32770"}
    ]


def test_the_storage_server_has_limits_and_a_health_check() -> None:
    spec = StorageSpec(memory_mb=512, cpus=0.5)
    body = storage_config(
        seaweedfs_recipe("a" * 20, "b" * 40),
        deployment_id="d1",
        network="faaslab-d1",
        volume="faaslab-d1-storage",
        spec=spec,
        host_port=32768,
    )
    host = body["HostConfig"]
    assert_hardened(host, 512, 0.5)
    assert host["Tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,size=64m")
    assert host["PortBindings"] == {"9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}]}
    test = body["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    assert test[1].endswith("busybox")
    assert test[-1] == "http://127.0.0.1:9000/healthz"


def test_the_requirements_installer_is_off_docker0_and_read_only(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six\n")
    settings = PipSettings(options={}, proxies={}, ca_bundle=None, mounts=[])
    stage = tmp_path / "stage"
    body = _pip_container(requirements, stage, "img", "k" * 32, settings)
    host = body["HostConfig"]
    assert_hardened(host, 4096, 2.0)
    # Off docker0: run_to_exit(own_network=True) sets a network of its own.
    assert "NetworkMode" not in host
    env = dict(item.split("=", 1) for item in body["Env"])
    assert env["TMPDIR"] == "/faaslab/target/.pip-tmp"  # on disk, not in memory
    assert body["Healthcheck"]["Test"] == ["CMD", "bash", "-c", "kill -0 1"]
