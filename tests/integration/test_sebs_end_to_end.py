"""SeBS-layout benchmarks end to end: package, requirements, inputs in real storage,
invocation in a container, validation.

This is the sequence a deployment runs for ``start DIR --size test`` and
``invoke --input 0 --validate``, assembled from the pieces directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from faaslab._backend import Backend, Label
from faaslab._function._actor import InstanceContext, open_instance
from faaslab._runtime import RUNTIME_IMAGE
from faaslab._runtime._requirements import install_requirements
from faaslab._sebs._benchmark import (
    Verdict,
    build_package,
    generate_inputs,
    load_benchmark,
    validate,
)
from faaslab._spec import FunctionSpec, StorageSpec
from faaslab._storage import Storage, open_storage

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

DATA = Path(__file__).parent.parent / "data" / "sebs"


@pytest.fixture
async def storage(
    engine: Backend, deployment_id: str, nothing_left: None
) -> AsyncIterator[tuple[Storage, str]]:
    network = f"faaslab-{deployment_id}"
    network_id = await engine.create_network(network, {Label.DEPLOYMENT: deployment_id})
    try:
        async with open_storage(
            engine, StorageSpec(), deployment_id=deployment_id, network=network
        ) as started:
            assert started is not None
            yield started, network
    finally:
        await engine.remove_network(network_id)


async def test_generate_inputs_into_real_storage(storage: tuple[Storage, str]) -> None:
    store, _ = storage
    data_dir = DATA / "benchmarks-data" / "900.storage-roundtrip"
    benchmark = load_benchmark(DATA / "900.storage-roundtrip", size="test", data_dir=data_dir)
    config = await generate_inputs(benchmark, store)
    bucket = config["bucket"]["bucket"]
    assert bucket == store.benchmarks_bucket_name()
    assert sorted(await store.list_objects(bucket)) == [
        "900.storage-roundtrip-0-input/hello.txt",
        "900.storage-roundtrip-0-input/other.txt",
    ]
    assert (
        await store.download_bytes(bucket, "900.storage-roundtrip-0-input/hello.txt")
        == (data_dir / "hello.txt").read_bytes()
    )
    described = store.describe()
    assert described["input_buckets"] == ["900.storage-roundtrip-0-input"]
    assert described["output_buckets"] == ["900.storage-roundtrip-0-output"]
    assert described["benchmarks_bucket"] == bucket


async def test_benchmarks_run_and_validate_end_to_end(
    engine: Backend, storage: tuple[Storage, str], deployment_id: str, tmp_path: Path
) -> None:
    store, network = storage
    roundtrip = load_benchmark(
        DATA / "900.storage-roundtrip",
        size="test",
        data_dir=DATA / "benchmarks-data" / "900.storage-roundtrip",
    )
    requirement = load_benchmark(DATA / "910.requirement", size="test")
    assert requirement.requirements is not None

    roundtrip_package = build_package(roundtrip.path, tmp_path / "pkg" / roundtrip.name)
    requirement_package = build_package(requirement.path, tmp_path / "pkg" / requirement.name)
    site = await install_requirements(
        engine,
        requirement_package / requirement.requirements.name,
        cache_root=tmp_path / "requirements",
    )
    inputs = {
        roundtrip.name: await generate_inputs(roundtrip, store),
        requirement.name: await generate_inputs(requirement, store),
    }

    base = InstanceContext(
        deployment_id=deployment_id, network=network, image=RUNTIME_IMAGE,
        start_timeout_s=30, stop_grace_s=1, remove=True,
    )  # fmt: skip
    contexts = {
        roundtrip.name: msgspec.structs.replace(base, env=store.function_env()),
        requirement.name: msgspec.structs.replace(
            base, binds=[f"{site}:/function/.python_packages:ro"]
        ),
    }
    packages = {roundtrip.name: roundtrip_package, requirement.name: requirement_package}
    async with aiohttp.ClientSession() as session:
        for benchmark in (roundtrip, requirement):
            spec = FunctionSpec(
                name=benchmark.name,
                code=str(packages[benchmark.name]),
                memory_mb=benchmark.memory_mb,
                timeout_s=benchmark.timeout_s,
            )
            async with open_instance(
                engine, spec, 0, contexts[benchmark.name], session
            ) as instance:
                event = msgspec.json.encode(inputs[benchmark.name])
                result = await instance.invoke(event, timeout=benchmark.timeout_s)
            assert result.error is None, result.error
            verdict = await validate(benchmark, inputs[benchmark.name], result.output, store)
            assert verdict == Verdict("valid"), (benchmark.name, verdict, result.output)

            if benchmark is roundtrip:
                # What the function wrote is in the output prefix; init.sh's file was there.
                assert result.output["banner"] == "faaslab test banner"
                key = result.output["result"]["key"]
                assert key.startswith("900.storage-roundtrip-0-output/hello.")
                assert key in await store.list_objects(inputs[benchmark.name]["bucket"]["bucket"])
            else:
                assert result.output["result"]["six"] == "1.17.0"
