"""The sandbox of every container faaslab starts, checked on live containers.

The CIS Docker Benchmark section 5 checks are evaluated the way
docker-bench-security evaluates them: from ``docker inspect`` fields (the
same document the engine API returns), on running containers. Numbering of
CIS v1.7/1.8 (docker-bench-security's own layout numbers them one lower).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import faaslab
from faaslab._backend import FUNCTION_USER, Backend
from faaslab._deployment._open import open_deployment
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

#: The automated section-5 checks that apply to faaslab's containers.
CHECKS = (
    "5.4", "5.5", "5.10", "5.11", "5.12", "5.13", "5.14", "5.16", "5.17",
    "5.21", "5.22", "5.25", "5.26", "5.27", "5.29", "5.30", "5.31",
)  # fmt: skip


def network_bridge_name(network: str) -> str | None:
    """``com.docker.network.bridge.name`` of a network (docker-bench's 5.30 reads it)."""
    result = subprocess.run(
        ["docker", "network", "inspect", network, "--format", "{{json .Options}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    options = json.loads(result.stdout) or {}
    return options.get("com.docker.network.bridge.name")


def cis_failures(data: dict[str, Any]) -> dict[str, str]:
    """Each failing check of one container's inspect document, with what was read."""
    host = data["HostConfig"]
    security = " ".join(host.get("SecurityOpt") or [])
    published = (data["NetworkSettings"].get("Ports") or {}).values()
    bindings = [b for ports in published for b in ports or []]
    results = {
        "5.4": not (host.get("CapAdd") or []) or f"CapAdd={host.get('CapAdd')}",
        "5.5": host.get("Privileged") is False or "Privileged",
        "5.10": host.get("NetworkMode") != "host" or "NetworkMode=host",
        "5.11": host.get("Memory", 0) != 0 or "Memory=0",
        "5.12": (host.get("CpuShares", 0) != 0 and host.get("NanoCpus", 0) != 0)
        or f"CpuShares={host.get('CpuShares')} NanoCpus={host.get('NanoCpus')}",
        "5.13": host.get("ReadonlyRootfs") is True or "ReadonlyRootfs=false",
        "5.14": all(b.get("HostIp") not in ("", "0.0.0.0", "::") for b in bindings)
        or f"ports {bindings}",
        "5.16": host.get("PidMode") != "host" or "PidMode=host",
        "5.17": host.get("IpcMode") != "host" or "IpcMode=host",
        "5.21": host.get("UTSMode") != "host" or "UTSMode=host",
        "5.22": not any(u in security for u in ("seccomp:unconfined", "seccomp=unconfined"))
        or f"SecurityOpt={security}",
        "5.25": (host.get("CgroupParent") or "") == "" or f"CgroupParent={host['CgroupParent']}",
        "5.26": "no-new-privileges" in security or f"SecurityOpt={security}",
        "5.27": bool((data["State"].get("Health") or {}).get("Status")) or "no State.Health",
        "5.29": host.get("PidsLimit") not in (None, 0, -1) or f"PidsLimit={host.get('PidsLimit')}",
        "5.30": all(
            network_bridge_name(name) != "docker0"
            for name in (data["NetworkSettings"].get("Networks") or {})
        )
        or "on docker0",
        "5.31": "host" not in (host.get("UsernsMode") or "").lower() or "UsernsMode=host",
    }
    assert set(results) == set(CHECKS)
    return {check: str(result) for check, result in results.items() if result is not True}


async def test_every_container_passes_cis_section_5(
    engine: Backend,
    deployment_id: str,
    make_function: Callable[..., Path],
    leftovers_of: Callable[[str], Any],
) -> None:
    # A requirement nobody installed yet (a unique comment makes a new cache key),
    # so that the requirements installer runs and can be inspected too.
    code = make_function(
        "needs-six",
        "import six\n\ndef handler(event):\n    return {'six': six.__version__}\n",
        **{"requirements.txt": f"six\n# {secrets.token_hex(8)}\n"},
    )
    spec = DeploymentSpec(
        functions=[FunctionSpec(name="needs-six", code=str(code), instances=2)],
        deployment_id=deployment_id,
        storage=StorageSpec(kind="seaweedfs"),
    )
    inspected: dict[str, dict[str, Any]] = {}
    failures: dict[str, dict[str, str]] = {}

    async def check(name: str, data: dict[str, Any]) -> None:
        """Evaluate the checks at once: the pip container and its network are short-lived."""
        inspected[name] = data
        failures[name] = await anyio.to_thread.run_sync(cis_failures, data)

    async def catch_the_installer() -> None:
        """Inspect the pip container of this test while it runs (it lives a few seconds)."""
        while True:
            for container in await engine.containers_labeled("faaslab.role=pip"):
                data = await engine.inspect_container(container["Id"])
                binds = " ".join((data or {}).get("HostConfig", {}).get("Binds") or [])
                health = ((data or {}).get("State") or {}).get("Health") or {}
                if data and str(code) in binds and health.get("Status"):
                    await check("pip", data)
                    return
            await anyio.sleep(0.02)  # the engine offers no event for it: poll, bounded below

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(catch_the_installer)
            async with open_deployment(spec) as dep:
                assert "six" in (await dep.invoke("needs-six", {})).output
                for instance in dep.instances():
                    data = await engine.inspect_container(instance.container_id)
                    assert data is not None
                    await check(instance.name, data)
                assert dep.storage is not None
                assert dep.storage.container_id
                storage = await engine.inspect_container(dep.storage.container_id)
                assert storage is not None
                await check("storage", storage)
            tg.cancel_scope.cancel()  # the installer was caught, or never seen: checked below

    assert "pip" in inspected, "the requirements installer was never seen running"
    assert {"needs-six-0", "needs-six-1", "storage", "pip"} <= set(inspected)
    assert failures == {name: {} for name in inspected}
    for name in ("needs-six-0", "needs-six-1"):
        config = inspected[name]["Config"]
        assert config["User"] == FUNCTION_USER
        assert config["Healthcheck"]["Test"][:2] == ["CMD", "bash"]
        assert inspected[name]["HostConfig"]["Tmpfs"]["/tmp"].endswith("size=512m,mode=1777")
    assert await leftovers_of(deployment_id) == []


SANDBOXED = """
import os

def handler(event):
    if "write" in event:
        with open(event["write"], "w") as f:
            f.write("x" * event.get("bytes", 1))
        return {"written": event["write"]}
    if "tmp_mb" in event:
        block = b"x" * (1024 * 1024)
        with open("/tmp/block", "wb") as f:
            for _ in range(event["tmp_mb"]):
                f.write(block)
        with open("/tmp/block", "rb") as f:
            return {"read_mb": len(f.read()) // (1024 * 1024)}
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines()
                  if ":\\t" in line)
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "seccomp": status["Seccomp"].strip(),
        "home": os.environ["HOME"],
    }
"""


@pytest.mark.usefixtures("nothing_left")
async def test_a_function_writes_only_to_tmp_with_a_clear_error_elsewhere(
    deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("sandboxed", SANDBOXED)
    function = FunctionSpec(name="sandboxed", code=str(code), memory_mb=128, tmp_mb=64)
    spec = DeploymentSpec(
        functions=[function],
        deployment_id=deployment_id,
        storage=StorageSpec(kind="none"),
        measure_interval_ms=1,
    )
    async with open_deployment(spec) as dep:
        identity = (await dep.invoke("sandboxed", {})).output
        assert identity == {
            "uid": 10001,
            "gid": 10001,
            "cap_eff": "0000000000000000",  # no capabilities at all
            "no_new_privs": "1",
            "seccomp": "2",  # filter mode: the engine's default profile
            "home": "/tmp",
        }
        for path in ("/etc/passwd-faaslab", "/function/function/new.py", "/opt/x", "/x"):
            with pytest.raises(faaslab.InvocationError) as refused:
                await dep.invoke("sandboxed", {"write": path})
            message = refused.value.remote_message
            assert path in message
            assert "Read-only file system" in message
            assert "only /tmp is writable" in message
        assert (await dep.invoke("sandboxed", {"write": "/tmp/ok"})).output == {
            "written": "/tmp/ok"
        }
        # /tmp is memory: 40 MB written there show in the call's memory peak.
        wrote = await dep.invoke("sandboxed", {"tmp_mb": 40})
        assert wrote.output == {"read_mb": 40}
        assert wrote.memory_peak_bytes is not None
        assert wrote.memory_before_bytes is not None
        assert wrote.memory_peak_bytes - wrote.memory_before_bytes >= 40 * 1024 * 1024
        # And it is bounded by tmp_mb, with the reason in the error.
        with pytest.raises(faaslab.InvocationError) as full:
            await dep.invoke("sandboxed", {"tmp_mb": 80})
        assert "No space left on device" in full.value.remote_message
        assert "/tmp holds 64 MB" in full.value.remote_message
        assert (await dep.invoke("sandboxed", {})).ok  # the instance survived all that
