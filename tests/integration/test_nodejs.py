"""Node.js functions on the real engine: deploy, invoke, sample, npm installs, bad input."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import structlog.testing

import faaslab
from faaslab._backend import Backend, Label
from faaslab._deployment._open import open_deployment
from faaslab._errors import InstanceStartError, RequirementsError, SpecError
from faaslab._function._actor import InstanceContext, open_instance
from faaslab._runtime import NODE_RUNTIME_IMAGE, install_packages
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

Leftovers = Callable[[str], Awaitable[list[str]]]

NODE_FUNCTION = """
const { v4: uuidv4 } = require('uuid');   // the image's global modules, as in SeBS
const minio = require('minio');

exports.handler = async function (event) {
  if (event.mb) {
    const block = Buffer.alloc(event.mb * 1024 * 1024, 1);
    return { size: block.length };
  }
  return { echo: event, node: process.version, uuid: uuidv4().length, minio: typeof minio.Client };
};
"""
MUSTACHE_FUNCTION = """
const Mustache = require('mustache');

exports.handler = async (event) => ({
  html: Mustache.render('<p>{{name}}</p>', event),
  from: require.resolve('mustache'),
});
"""


def node_function(root: Path, name: str, source: str, **files: str) -> Path:
    directory = root / name
    directory.mkdir(mode=0o755)
    (directory / "function.js").write_text(textwrap.dedent(source))
    for filename, text in files.items():
        (directory / filename).write_text(text)
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def spec_for(deployment_id: str, *functions: FunctionSpec, **options: Any) -> DeploymentSpec:
    options.setdefault("storage", StorageSpec(kind="none"))
    return DeploymentSpec(functions=list(functions), deployment_id=deployment_id, **options)


async def labeled(engine: Backend, role: str) -> set[str]:
    label = f"{Label.ROLE}={role}"
    containers = {c["Id"] for c in await engine.containers_labeled(label)}
    return containers | {n["Id"] for n in await engine.networks_labeled(label)}


@pytest.mark.usefixtures("nothing_left")
async def test_a_nodejs_function_is_deployed_invoked_sampled_and_limited(
    deployment_id: str, tmp_path: Path
) -> None:
    code = node_function(tmp_path, "node", NODE_FUNCTION)
    function = FunctionSpec(name="node", code=str(code), language="nodejs", memory_mb=96)
    spec = spec_for(deployment_id, function, measure_interval_ms=1)
    stats = tmp_path / "memory_stats.json"
    async with open_deployment(spec) as dep:
        first = await dep.invoke("node", {"n": 1})
        second = await dep.invoke("node", {"n": 2})
        assert (first.is_cold, second.is_cold) == (True, False)
        for call in (first, second):
            assert 0 < call.begin <= call.end
            assert str(uuid.UUID(call.request_id)) == call.request_id
            assert call.memory_peak_bytes is not None
            assert call.memory_peak_bytes > 1_000_000
        assert first.request_id != second.request_id
        assert first.output["echo"] == {"n": 1}
        assert first.output["node"].startswith("v18.")
        assert first.output["uuid"] == 36
        assert first.output["minio"] == "function"
        container = first.container_id

        # The memory limit holds for Node as for Python: over it is an OOM kill.
        with dep.events() as events:
            with pytest.raises(faaslab.InstanceLost) as raised:
                await dep.invoke("node", {"mb": 400})
            assert raised.value.oom_killed
            with anyio.fail_after(30):
                async for event in events:
                    if event.__struct_config__.tag == "instance.ready":
                        break
        again = await dep.invoke("node", {"n": 3})
        assert again.is_cold
        assert again.container_id != container
        await dep.stop(stats)
    written = json.loads(stats.read_text())
    assert written.pop("precision_errors") >= 0
    assert set(written) == {container, again.container_id}
    assert written[container]["number of measurements"] > 10


async def test_npm_installs_a_dependency_once_and_the_function_requires_it(
    engine: Backend,
    deployment_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    nothing_left: None,
) -> None:
    package_json = json.dumps({"dependencies": {"mustache": "^3.2.1"}})
    code = node_function(tmp_path, "render", MUSTACHE_FUNCTION, **{"package.json": package_json})
    cache = tmp_path / "cache"
    before = await labeled(engine, "npm")
    lines: list[str] = []
    installed = await install_packages(
        engine, code / "package.json", cache_root=cache, progress=lines.append
    )
    assert installed.parent == cache.resolve()
    assert (installed / "node_modules" / "mustache" / "package.json").is_file()
    assert any("added 1 package" in line for line in lines), lines
    assert await labeled(engine, "npm") == before  # its container and network are gone
    assert [p.name for p in cache.iterdir()] == [installed.name]  # no staging left

    # The second start finds it in the cache: no container at all.
    async def no_container(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("a cached install must not create a container")

    monkeypatch.setattr(engine, "create_container", no_container)
    started = time.monotonic()
    assert await install_packages(engine, code / "package.json", cache_root=cache) == installed
    assert time.monotonic() - started < 1.0
    monkeypatch.undo()
    # Another package.json is another entry.
    (code / "package.json").write_text(json.dumps({"dependencies": {"mustache": "3.2.1"}}))
    other = await install_packages(engine, code / "package.json", cache_root=cache)
    assert other != installed

    network = f"faaslab-{deployment_id}"
    network_id = await engine.create_network(network, {Label.DEPLOYMENT: deployment_id})
    try:
        context = InstanceContext(
            deployment_id=deployment_id, network=network, image=NODE_RUNTIME_IMAGE,
            start_timeout_s=30, stop_grace_s=1, remove=True,
            binds=[f"{installed}:/function/.node_packages:ro"],
        )  # fmt: skip
        spec = FunctionSpec(name="render", code=str(code), language="nodejs")
        async with (
            aiohttp.ClientSession() as session,
            open_instance(engine, spec, 0, context, session) as instance,
        ):
            result = await instance.invoke(b'{"name": "faaslab"}', timeout=30)
        assert result.error is None, result.error
        assert result.output["html"] == "<p>faaslab</p>"
        assert result.output["from"].startswith("/function/.node_packages/node_modules/mustache/")
    finally:
        await engine.remove_network(network_id)


async def test_a_package_json_npm_cannot_install_fails_before_any_instance(
    engine: Backend, deployment_id: str, tmp_path: Path, leftovers_of: Leftovers
) -> None:
    missing = json.dumps({"dependencies": {"faaslab-no-such-package-anywhere": "0.0.1"}})
    code = node_function(tmp_path, "broken", NODE_FUNCTION, **{"package.json": missing})
    before = await labeled(engine, "npm")
    with pytest.raises(RequirementsError) as raised:
        await install_packages(engine, code / "package.json", cache_root=tmp_path / "cache")
    message = str(raised.value)
    assert message.splitlines()[0].endswith("failed: npm exited with code 1")
    assert "E404" in message
    assert "faaslab-no-such-package-anywhere" in message
    assert "complete log" not in message  # npm's pointer into the removed container
    assert list((tmp_path / "cache").iterdir()) == []
    assert await labeled(engine, "npm") == before

    function = FunctionSpec(name="broken", code=str(code), language="nodejs")
    with pytest.raises(RequirementsError, match="npm exited with code 1"):
        async with open_deployment(spec_for(deployment_id, function)):
            pytest.fail("must not start")
    assert await leftovers_of(deployment_id) == []

    (code / "package.json").write_text("{not json")
    with pytest.raises(SpecError, match=r"package\.json: not valid JSON"):
        async with open_deployment(spec_for(deployment_id, function)):
            pytest.fail("must not start")
    assert await leftovers_of(deployment_id) == []
    assert await labeled(engine, "npm") == before


async def test_a_missing_handler_export_fails_the_start_in_one_line(
    deployment_id: str, tmp_path: Path, leftovers_of: Leftovers
) -> None:
    code = node_function(tmp_path, "nohandler", "exports.other = async () => 1;\n")
    function = FunctionSpec(name="nohandler", code=str(code), language="nodejs", instances=3)
    with structlog.testing.capture_logs() as logs, pytest.raises(InstanceStartError) as raised:
        async with open_deployment(spec_for(deployment_id, function)):
            pytest.fail("must not start")
    events = [entry["event"] for entry in logs]
    assert "function.load_failed" in events
    assert "instance.starting" not in events  # no instance was ever created
    message = str(raised.value)
    assert "\n" not in message
    # The load check's line, not an instance's ("nohandler-0 exited before it was ready").
    assert message.startswith("nohandler: cannot load the function in /function/function: ")
    assert "TypeError: /function/function/function.js exports no callable `handler(event)`" in (
        message
    )
    assert raised.value.container_exit_code == 1
    assert await leftovers_of(deployment_id) == []

    # Fixed, it starts; a second start finds the passed check remembered.
    # (A comment of its own: the verdicts are keyed by content, across test runs too.)
    (code / "function.js").write_text(f"// {uuid.uuid4()}\nexports.handler = async () => 1;\n")
    fixed = FunctionSpec(name="nohandler", code=str(code), language="nodejs")
    for expected in ("function.load_checked", "function.load_check_cached"):
        with structlog.testing.capture_logs() as logs:
            async with open_deployment(spec_for(deployment_id, fixed)) as dep:
                assert (await dep.invoke("nohandler", {})).output == 1
        assert expected in [entry["event"] for entry in logs]
    assert await leftovers_of(deployment_id) == []


async def test_an_experiment_runs_a_nodejs_function_cold_and_warm(
    tmp_path: Path, deployment_id: str, leftovers_of: Leftovers
) -> None:
    from faaslab._experiment import (
        ExperimentDeployment,
        ExperimentSpec,
        Workload,
        read_records,
        run_experiment,
    )

    code = node_function(tmp_path, "node", NODE_FUNCTION)
    spec = ExperimentSpec(
        name="node",
        deployments=[
            ExperimentDeployment(
                name="node",
                deployment_id=deployment_id,
                functions=[FunctionSpec(name="node", code=str(code), language="nodejs")],
                storage=StorageSpec(kind="none"),
            )
        ],
        workloads=[
            Workload(function="node", start="cold", clients=1, count=2, event={"mb": 8}),
            Workload(function="node", start="warm", clients=1, count=3, event={"mb": 8}),
        ],
    )
    result = await run_experiment(spec, tmp_path / "results")
    assert result.ok, result
    records = list(read_records(tmp_path / "results" / "invocations.jsonl"))
    cold = [r for r in records if r.start == "cold"]
    warm = [r for r in records if r.start == "warm"]
    assert (len(cold), len(warm)) == (2, 3)
    assert len({r.container_id for r in cold}) == 2  # a fresh container per cold call
    assert all(r.is_cold for r in cold)
    assert not any(r.is_cold for r in warm)
    assert all((r.memory_peak_bytes or 0) > 8 * 1024 * 1024 for r in records)
    assert await leftovers_of(deployment_id) == []
