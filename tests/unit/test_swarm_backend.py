"""The Swarm backend's pure parts: specs, the service translation, placement, gateways."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

import faaslab
from faaslab import DeploymentSpec, FunctionSpec, SpecError
from faaslab._backend import (
    InstanceRequest,
    eligible_nodes,
    node_matches,
    parse_registry_address,
    service_spec,
    spread_node,
)
from faaslab._backend._gateway import FORWARDER, gateway_config
from faaslab._backend._placement import parse_constraint
from faaslab._backend._service import tmpfs_bytes
from faaslab._backend._tasks import exit_code, parse_task
from faaslab._function import InstanceContext, instance_request
from faaslab._runtime import _sampler_image
from faaslab._sampling._node import resolve
from faaslab._spec import SwarmSpec


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "fn"
    directory.mkdir()
    (directory / "function.py").write_text("def handler(event):\n    return event\n")
    return directory


# -- specs ----------------------------------------------------------------------------


def test_swarm_is_chosen_in_a_toml_spec(code: Path) -> None:
    text = f"""
backend = "swarm"
[swarm]
address = "10.0.0.5"
registry = "10.0.0.5:5000"
[[functions]]
name = "fn"
code = "{code}"
instances = 2
placement = ["node.labels.role==bench"]
"""
    spec = msgspec.convert(tomllib.loads(text), DeploymentSpec)
    assert spec.backend == "swarm"
    assert spec.swarm.registry == "10.0.0.5:5000"
    assert spec.functions[0].placement == ["node.labels.role==bench"]


def test_the_default_backend_is_the_docker_host(code: Path) -> None:
    spec = DeploymentSpec(functions=[FunctionSpec(name="fn", code=str(code))])
    assert spec.backend == "docker"
    assert spec.swarm == SwarmSpec()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"address": "localhost"}, "swarm.address: 'localhost'"),
        ({"publish": "mesh"}, "swarm.publish: 'mesh'"),
        ({"registry": "nohost"}, "swarm.registry: 'nohost'"),
        ({"registry": "r:99999"}, "swarm.registry: 'r:99999'"),
        ({"sampler_timeout_s": 0}, "swarm.sampler_timeout_s: 0"),
    ],
)
def test_bad_swarm_settings(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        SwarmSpec(**options)


def test_placement_is_a_constraint(code: Path) -> None:
    with pytest.raises(SpecError, match="not a Swarm constraint"):
        FunctionSpec(name="fn", code=str(code), placement=["role=bench"])


def test_placement_needs_the_swarm_backend(code: Path) -> None:
    function = FunctionSpec(name="fn", code=str(code), placement=["node.role==worker"])
    with pytest.raises(SpecError, match="only backend 'swarm'"):
        DeploymentSpec(functions=[function])
    assert DeploymentSpec(functions=[function], backend="swarm").backend == "swarm"


def test_an_unknown_backend(code: Path) -> None:
    with pytest.raises(SpecError, match="backend: 'k8s'"):
        DeploymentSpec(functions=[FunctionSpec(name="fn", code=str(code))], backend="k8s")  # type: ignore[arg-type]


# -- the service translation --------------------------------------------------------------


def _request(code: Path, **options: Any) -> InstanceRequest:
    spec = FunctionSpec(name="fn", code=str(code), memory_mb=128, cpus=0.5, **options)
    ctx = InstanceContext(
        deployment_id="d1",
        network="faaslab-d1",
        image="faaslab/python:3.11",
        start_timeout_s=30,
        stop_grace_s=2,
        remove=True,
        labels={"faaslab.owner": "1:2"},
        binds=["/cache/pkgs:/function/.python_packages:ro"],
    )
    return instance_request(spec, "fn-0", ctx, 1, engine_name="faaslab-d1-fn-0-r1")


def test_one_task_no_restarts_on_the_overlay_without_the_mesh(code: Path) -> None:
    body = service_spec(_request(code), image="sha256:abc", publish_host_mode=False).body
    assert body["Name"] == "faaslab-d1-fn-0-r1"
    assert body["Mode"] == {"Replicated": {"Replicas": 1}}
    task = body["TaskTemplate"]
    assert task["RestartPolicy"]["Condition"] == "none"
    assert task["Networks"] == [{"Target": "faaslab-d1", "Aliases": ["fn-0"]}]
    assert body["EndpointSpec"] == {"Mode": "dnsrr"}  # no VIP, no published port


def test_the_sandbox_carries_over(code: Path) -> None:
    spec = service_spec(_request(code), image="sha256:abc", publish_host_mode=False)
    container = spec.body["TaskTemplate"]["ContainerSpec"]
    limits = spec.body["TaskTemplate"]["Resources"]["Limits"]
    assert container["Image"] == "sha256:abc"
    assert "FAASLAB_INSTANCE=fn-0" in container["Env"]
    assert container["Labels"]["faaslab.deployment"] == "d1"
    assert container["Labels"]["faaslab.owner"] == "1:2"
    assert spec.body["Labels"] == container["Labels"]
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["StopGracePeriod"] == 2_000_000_000
    assert limits == {"MemoryBytes": 128 * 1024 * 1024, "NanoCPUs": 500_000_000, "Pids": 1024}
    assert {"Type": "bind", "Source": str(code.resolve()), "Target": "/function/function",
            "ReadOnly": True} in container["Mounts"]  # fmt: skip
    assert {"Type": "bind", "Source": "/cache/pkgs", "Target": "/function/.python_packages",
            "ReadOnly": True} in container["Mounts"]  # fmt: skip
    # What a service cannot say on API 1.41 is named, not dropped silently.
    # (CPU shares: a service has only the NanoCPUs quota, which is there.)
    assert spec.gaps == ("HostConfig.CpuShares", "SecurityOpt no-new-privileges")
    assert container["Healthcheck"]["StartInterval"] == 5 * 10**8
    # An engine without StartInterval (API < 1.44) would hold the task in
    # "starting" for a whole interval: the check is left out, and said so.
    old = service_spec(
        _request(code), image="sha256:abc", publish_host_mode=False, health_start_interval=False
    )
    assert "Healthcheck" not in old.body["TaskTemplate"]["ContainerSpec"]
    assert "Healthcheck (no StartInterval before API 1.44)" in old.gaps


def test_host_mode_publishing_and_placement(code: Path) -> None:
    request = msgspec.structs.replace(
        _request(code, placement=["node.labels.role==bench"]), node="n2"
    )
    body = service_spec(request, image="x", publish_host_mode=True).body
    assert body["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"}
    ]
    assert body["TaskTemplate"]["Placement"]["Constraints"] == [
        "node.labels.role==bench",
        "node.id==n2",
    ]


def test_volumes_tmpfs_and_unknown_settings() -> None:
    request = InstanceRequest(
        name="s",
        alias="storage",
        network="n",
        port=9000,
        container={
            "Image": "weed",
            "Cmd": ["mini", "-dir=/data"],
            "HostConfig": {
                "Binds": ["faaslab-d1-storage:/data"],
                "Tmpfs": {"/tmp": "rw,nosuid,size=64m"},
                "ReadonlyRootfs": True,
                "Devices": [{"PathOnHost": "/dev/fuse"}],
            },
        },
    )
    spec = service_spec(request, image="weed", publish_host_mode=False, global_mode=True)
    container = spec.body["TaskTemplate"]["ContainerSpec"]
    assert container["Args"] == ["mini", "-dir=/data"]
    assert container["ReadOnly"] is True
    assert container["Mounts"] == [
        {"Type": "volume", "Source": "faaslab-d1-storage", "Target": "/data", "ReadOnly": False},
        {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 64 << 20}},
    ]
    assert spec.body["Mode"] == {"Global": {}}
    assert spec.gaps == ("HostConfig.Devices",)


@pytest.mark.parametrize(
    ("options", "size"), [("size=64m", 64 << 20), ("rw,size=2g", 2 << 30), ("rw", None)]
)
def test_tmpfs_sizes(options: str, size: int | None) -> None:
    assert tmpfs_bytes(options) == size


# -- placement ----------------------------------------------------------------------------


def _node(node_id: str, hostname: str, *, role: str = "worker", **labels: str) -> dict[str, Any]:
    return {
        "ID": node_id,
        "Description": {"Hostname": hostname, "Platform": {"OS": "linux"}},
        "Spec": {"Role": role, "Availability": "active", "Labels": labels},
        "Status": {"State": "ready", "Addr": "10.0.0.1"},
    }


def test_constraints_match_swarm_semantics() -> None:
    node = _node("a", "h1", role="manager", role_label="x", zone="eu")
    assert node_matches(node, ["node.role==manager", "node.labels.zone==eu"])
    assert node_matches(node, ["node.labels.zone!=us", "node.platform.os==linux"])
    assert not node_matches(node, ["node.labels.missing==x"])
    assert node_matches(node, ["node.labels.missing!=x"])
    assert parse_constraint(" node.id == a ") == ("node.id", "==", "a")
    with pytest.raises(SpecError, match="unknown constraint key"):
        node_matches(node, ["nodes.id==a"])


def test_spreading_is_round_robin_over_eligible_ready_nodes() -> None:
    down = _node("c", "h0", zone="eu")
    down["Status"]["State"] = "down"
    nodes = [_node("b", "h2", zone="eu"), _node("a", "h1", zone="eu"), down, _node("d", "h3")]
    eligible = eligible_nodes(nodes, ["node.labels.zone==eu"])
    assert eligible == ["a", "b"]  # by hostname; the down node is out
    assert [spread_node(eligible, i) for i in range(4)] == ["a", "b", "a", "b"]
    assert spread_node([], 0) is None


# -- tasks, gateways, registries, node sampler paths ------------------------------------------


def test_a_task_as_the_backend_reads_it() -> None:
    task = parse_task(
        {
            "ID": "t1",
            "NodeID": "n1",
            "Status": {
                "State": "running",
                "Message": "started",
                "ContainerStatus": {"ContainerID": "c" * 64},
                "PortStatus": {
                    "Ports": [
                        {"TargetPort": 7070, "PublishedPort": 30001},  # IPv4
                        {"TargetPort": 7070, "PublishedPort": 30002},  # IPv6, another port
                    ]
                },
            },
            "NetworksAttachments": [
                {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.9/24"]},
                {"Network": {"Spec": {"Name": "faaslab-d1"}}, "Addresses": ["10.253.1.4/24"]},
            ],
        },
        "faaslab-d1",
        {"n1": "192.0.2.7"},
    )
    assert task.overlay_address == "10.253.1.4"
    assert task.node_address == "192.0.2.7"
    assert task.published == {7070: 30001}
    assert task.container_id == "c" * 64


@pytest.mark.parametrize(
    ("message", "code"),
    [("task: non-zero exit (137)", 137), ("finished", 0), ("shutdown", -1), ("", 0)],
)
def test_exit_codes_from_task_errors(message: str, code: int) -> None:
    assert exit_code(message) == code


def test_a_gateway_publishes_on_one_address_only() -> None:
    config = gateway_config(
        image="img", network="n", target_host="svc", target_port=8080, address="10.1.2.3",
        labels={"faaslab.deployment": "d"},
    )  # fmt: skip
    assert config["HostConfig"]["PortBindings"] == {
        "8080/tcp": [{"HostIp": "10.1.2.3", "HostPort": ""}]
    }
    assert config["Entrypoint"] == ["python3", "-c", FORWARDER]
    assert config["Cmd"] == ["svc", "8080", "8080"]
    assert config["HostConfig"]["CapDrop"] == ["ALL"]
    compile(FORWARDER, "forwarder", "exec")  # it is valid Python


@pytest.mark.parametrize("address", ["nohost:5000", "10.0.0.1", "10.0.0.1:0", "host:abc"])
def test_bad_registry_addresses(address: str) -> None:
    with pytest.raises(SpecError, match="registry address"):
        parse_registry_address(address)


def test_the_node_sampler_resolves_container_paths(tmp_path: Path) -> None:
    container = "ab" * 32
    directory = tmp_path / "memory" / "docker" / container
    directory.mkdir(parents=True)
    (directory / "memory.usage_in_bytes").write_text("4096\n")
    assert resolve(f"container:{container}", tmp_path) == str(
        directory / "memory.usage_in_bytes"
    )
    assert resolve("/some/file", tmp_path) == "/some/file"


def test_the_sampler_image_carries_every_module_its_modules_import() -> None:
    # The node sampler's image holds only some of faaslab: an import of a module
    # left out would fail in every task of the sampler service, on every node.
    carried = {*_sampler_image._MODULES, *_sampler_image._STUBS}
    root = Path(faaslab.__file__).parent
    for name in _sampler_image._MODULES:
        tree = ast.parse((root / name).read_text())
        package = Path(name).parent
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.parent
                target = base / (node.module or "").replace(".", "/")
                module = f"{target}.py".removeprefix("./")
                init = f"{target}/__init__.py".removeprefix("./")
                assert module in carried or init in carried, (name, node.module)
