"""The Storage actor against the real engine and a real SeaweedFS container.

Each test builds the deployment's network itself (``open_deployment`` does
in production) and checks that nothing of its deployment is left.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest

from faaslab._backend import Backend, Label, deployment_filter
from faaslab._errors import EngineError, SpecError, StorageError
from faaslab._function._actor import InstanceContext, open_instance
from faaslab._runtime import RUNTIME_IMAGE
from faaslab._spec import FunctionSpec, StorageSpec
from faaslab._storage import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    Storage,
    open_storage,
    parse_storage_option,
)

# The spec and fake-engine tests at the top need no engine; they live here, beside the rest.
pytestmark = pytest.mark.integration

Leftovers = Callable[[str], Awaitable[list[str]]]

# What SeBS's local platform writes as the storage entry of out.json
# (sebs/storage/config.py: S3CompatibleConfig / MinioConfig).
SEBS_STORAGE_KEYS = {
    "address", "external_address", "mapped_port", "access_key", "secret_key", "instance_id",
    "input_buckets", "output_buckets", "version", "data_volume", "type", "remove_containers",
}  # fmt: skip


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def network(engine: Backend, deployment_id: str, nothing_left: None) -> AsyncIterator[str]:
    """The deployment's network (removed before ``nothing_left`` looks)."""
    name = f"faaslab-{deployment_id}"
    network_id = await engine.create_network(name, {Label.DEPLOYMENT: deployment_id})
    try:
        yield name
    finally:
        await engine.remove_network(network_id)


@pytest.fixture
async def storage(engine: Backend, deployment_id: str, network: str) -> AsyncIterator[Storage]:
    async with open_storage(
        engine, StorageSpec(), deployment_id=deployment_id, network=network
    ) as started:
        assert started is not None
        yield started


# -- without an engine ---------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("seaweedfs", StorageSpec()),
        ("minio", StorageSpec(kind="minio")),
        ("none", StorageSpec(kind="none")),
        ("http://10.1.2.3:9000", StorageSpec(kind="external", endpoint="http://10.1.2.3:9000")),
    ],
)
def test_storage_option(option: str, expected: StorageSpec) -> None:
    assert parse_storage_option(option) == expected


def test_external_address_is_what_s3_clients_take() -> None:
    assert StorageSpec(kind="external", endpoint="http://10.1.2.3:9000").address == "10.1.2.3:9000"
    assert StorageSpec(kind="external", endpoint="http://[fd00::1]:80/").address == "[fd00::1]:80"
    assert StorageSpec().address is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: parse_storage_option("s3"), "--storage"),
        (lambda: StorageSpec(kind="external"), "storage.endpoint"),
        (lambda: StorageSpec(kind="external", endpoint="https://h:1"), "storage.endpoint"),
        (lambda: StorageSpec(kind="external", endpoint="http://h"), "storage.endpoint"),
        (lambda: StorageSpec(kind="external", endpoint="http://h:1/path"), "storage.endpoint"),
        (lambda: StorageSpec(endpoint="http://h:1"), "only for kind 'external'"),
        (lambda: StorageSpec(ready_timeout_s=0), "storage.ready_timeout_s"),
        (lambda: msgspec.convert({"kind": "s3"}, StorageSpec), "kind"),
    ],
)
def test_bad_storage_specs_name_the_field(build: Callable[[], Any], message: str) -> None:
    with pytest.raises((SpecError, msgspec.ValidationError), match=message):
        build()


class EngineWithoutMinio:
    """An engine that has no MinIO image and cannot pull one (as here, offline)."""

    async def image_labels(self, image: str) -> None:
        return None

    async def pull_image(self, image: str) -> None:
        raise EngineError(f"pull image {image}: no such host (HTTP 500)")


@pytest.mark.anyio
async def test_minio_that_cannot_be_had_says_to_use_seaweedfs() -> None:
    engine: Any = EngineWithoutMinio()
    spec = StorageSpec(kind="minio")
    with pytest.raises(StorageError, match=r"minio/minio.*cannot pull.*--storage seaweedfs"):
        async with open_storage(engine, spec, deployment_id="x", network="n"):
            pytest.fail("must not start")


@pytest.mark.anyio
async def test_none_yields_no_storage() -> None:
    engine: Any = object()  # never touched
    async with open_storage(
        engine, StorageSpec(kind="none"), deployment_id="x", network="n"
    ) as nothing:
        assert nothing is None


@pytest.mark.anyio
async def test_external_without_keys_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ACCESS_KEY_ENV, raising=False)
    monkeypatch.setenv(SECRET_KEY_ENV, "secret")
    spec = StorageSpec(kind="external", endpoint="http://127.0.0.1:9")
    engine: Any = object()
    with pytest.raises(SpecError, match=ACCESS_KEY_ENV):
        async with open_storage(engine, spec, deployment_id="x", network="n"):
            pytest.fail("must not start")


# -- against SeaweedFS ---------------------------------------------------------


@pytest.mark.anyio
async def test_storage_is_hardened_and_described(
    engine: Backend, storage: Storage, deployment_id: str, network: str
) -> None:
    assert storage.container_id is not None
    data = await engine.inspect_container(storage.container_id)
    assert data is not None
    host = data["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    bindings = data["NetworkSettings"]["Ports"]["9000/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert list(data["NetworkSettings"]["Ports"]) == ["9000/tcp"]  # nothing else published
    assert "storage" in data["NetworkSettings"]["Networks"][network]["Aliases"]
    labels = data["Config"]["Labels"]
    assert labels[Label.DEPLOYMENT] == deployment_id
    assert labels[Label.ROLE] == "storage"
    volumes = await engine.volumes_labeled(deployment_filter(deployment_id))
    assert [v["Name"] for v in volumes] == [storage.volume]

    assert storage.host_endpoint == f"127.0.0.1:{storage.host_port}"
    assert storage.function_env() == {
        "MINIO_ADDRESS": "storage:9000",
        "MINIO_ACCESS_KEY": storage.access_key,
        "MINIO_SECRET_KEY": storage.secret_key,
    }
    described = storage.describe()
    assert set(described) >= SEBS_STORAGE_KEYS
    assert described["instance_id"] == storage.container_id
    assert described["mapped_port"] == storage.host_port
    assert described["kind"] == "seaweedfs"
    msgspec.json.encode(described)  # it goes into a JSON file


@pytest.mark.anyio
async def test_roundtrip_listing_and_missing_things(storage: Storage, tmp_path: Path) -> None:
    await storage.create_bucket("inputs")
    await storage.create_bucket("inputs")  # idempotent
    source = tmp_path / "blob.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024 + 7))  # multipart on the way up
    await storage.upload_file("inputs", "dir/blob.bin", source)
    target = tmp_path / "back" / "blob.bin"
    await storage.download_file("inputs", "dir/blob.bin", target)
    assert sha256(target.read_bytes()) == sha256(source.read_bytes())
    assert await storage.object_exists("inputs", "dir/blob.bin")
    assert not await storage.object_exists("inputs", "dir/absent.bin")
    assert await storage.list_objects("inputs", "dir/") == ["dir/blob.bin"]

    missing = "faaslab-no-such-bucket"
    for attempt in (
        storage.upload_file(missing, "k", source),
        storage.download_file(missing, "k", tmp_path / "never"),
        storage.list_objects(missing),
        storage.object_exists(missing, "k"),
        storage.upload_directory(missing, "p", tmp_path),
    ):
        with pytest.raises(StorageError, match=f"bucket '{missing}' does not exist"):
            await attempt
    with pytest.raises(StorageError, match=r"no object 'dir/absent\.bin' in bucket 'inputs'"):
        await storage.download_file("inputs", "dir/absent.bin", tmp_path / "never")
    assert not (tmp_path / "never").exists()


@pytest.mark.anyio
async def test_upload_directory_of_many_files(storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    expected: dict[str, bytes] = {}
    for i in range(60):
        path = root / f"part-{i % 4}" / f"file-{i:02}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1000 + 97 * i))
        expected[f"data/part-{i % 4}/file-{i:02}.bin"] = path.read_bytes()
    seen: list[tuple[int, int]] = []
    await storage.create_bucket("many")

    keys = await storage.upload_directory(
        "many",
        "data/",
        root,
        concurrency=6,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert sorted(keys) == sorted(expected)
    assert sorted(await storage.list_objects("many", "data/")) == sorted(expected)
    total = sum(len(v) for v in expected.values())
    assert len(seen) == 60
    assert seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    sample = "data/part-3/file-59.bin"
    assert await storage.download_bytes("many", sample) == expected[sample]


@pytest.mark.anyio
async def test_wrong_credentials_from_the_host(
    engine: Backend, storage: Storage, monkeypatch: pytest.MonkeyPatch, deployment_id: str
) -> None:
    # The running server, reached as an external endpoint: with its keys, then without.
    spec = StorageSpec(kind="external", endpoint=f"http://{storage.host_endpoint}")
    monkeypatch.setenv(ACCESS_KEY_ENV, storage.access_key)
    monkeypatch.setenv(SECRET_KEY_ENV, storage.secret_key)
    async with open_storage(engine, spec, deployment_id=deployment_id, network="unused") as ext:
        assert ext is not None
        assert ext.function_address == storage.host_endpoint
        assert ext.describe()["instance_id"] == ""
        await ext.create_bucket("external")
        assert await storage.bucket_exists("external")

    monkeypatch.setenv(SECRET_KEY_ENV, "not-the-secret-key")
    with pytest.raises(StorageError, match=r"refused the credentials \(SignatureDoesNotMatch"):
        async with open_storage(engine, spec, deployment_id=deployment_id, network="unused"):
            pytest.fail("must not start")


@pytest.mark.anyio
async def test_storage_that_never_answers_reports_its_log(
    engine: Backend, deployment_id: str, network: str, leftovers_of: Leftovers
) -> None:
    # A master alone: it runs, logs, and never serves S3 on 9000.
    spec = StorageSpec(ready_timeout_s=3)
    command = ["master", "-port=9333", "-ip=127.0.0.1", "-mdir=/tmp"]
    with pytest.raises(StorageError) as raised:
        async with open_storage(
            engine, spec, deployment_id=deployment_id, network=network, command=command
        ):
            pytest.fail("must not become ready")
    message = str(raised.value)
    assert "did not answer an authenticated S3 call within 3 s" in message
    assert "--- last storage log lines ---" in message
    assert "master" in message.split("---")[-1].lower()


@pytest.mark.anyio
async def test_storage_that_exits_fails_fast_with_its_log(
    engine: Backend, deployment_id: str, network: str
) -> None:
    spec = StorageSpec(ready_timeout_s=60)
    with anyio.fail_after(30), pytest.raises(StorageError) as raised:
        async with open_storage(
            engine, spec, deployment_id=deployment_id, network=network, command=["version"]
        ):
            pytest.fail("must not become ready")
    assert "exited with code 0 before it was ready" in str(raised.value)
    assert "4.48" in str(raised.value)  # `weed version` printed it


@pytest.mark.anyio
async def test_cancel_while_starting_leaves_nothing(
    engine: Backend, deployment_id: str, network: str
) -> None:
    spec = StorageSpec(ready_timeout_s=60)
    command = ["master", "-port=9333", "-ip=127.0.0.1", "-mdir=/tmp"]
    label = deployment_filter(deployment_id)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:

            async def start() -> None:
                async with open_storage(
                    engine, spec, deployment_id=deployment_id, network=network, command=command
                ):
                    pytest.fail("must not become ready")

            tg.start_soon(start)
            # The engine offers no event for "created": poll it, bounded by fail_after.
            while not await engine.containers_labeled(label):  # noqa: ASYNC110
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_keep_leaves_the_data_for_the_next_start(
    engine: Backend, deployment_id: str, network: str
) -> None:
    spec = StorageSpec(keep=True)
    volume = f"faaslab-{deployment_id}-storage"
    try:
        async with open_storage(engine, spec, deployment_id=deployment_id, network=network) as s:
            assert s is not None
            await s.create_bucket("kept")
            await s.upload_bytes("kept", "note.txt", b"still here")
        volumes = await engine.volumes_labeled(deployment_filter(deployment_id))
        assert [v["Name"] for v in volumes] == [volume]
        assert await engine.containers_labeled(deployment_filter(deployment_id)) == []
        # Same deployment id, same volume: the data is back (under fresh keys).
        async with open_storage(engine, spec, deployment_id=deployment_id, network=network) as s:
            assert s is not None
            assert await s.download_bytes("kept", "note.txt") == b"still here"
    finally:
        await engine.remove_volume(volume)


# -- from a function container --------------------------------------------------

HELPER_FUNCTION = """
import hashlib, os
from . import storage

def digest(data):
    return hashlib.sha256(data).hexdigest()

def handler(event):
    client = storage.storage.get_instance()
    data = os.urandom(event["size"])
    with open("/tmp/up.bin", "wb") as f:
        f.write(data)
    key = client.upload(event["bucket"], "blob.bin", "/tmp/up.bin")
    client.download(event["bucket"], key, "/tmp/down.bin")
    with open("/tmp/down.bin", "rb") as f:
        downloaded = f.read()
    streamed = client.download_stream(event["bucket"], key)
    return {"key": key, "uploaded": digest(data), "downloaded": digest(downloaded),
            "streamed": digest(streamed)}
"""


@pytest.mark.anyio
async def test_function_uses_the_helper_and_wrong_keys_fail_clearly(
    engine: Backend,
    storage: Storage,
    deployment_id: str,
    network: str,
    make_function: Callable[..., Path],
) -> None:
    code = make_function("helper", HELPER_FUNCTION)
    spec = FunctionSpec(name="helper", code=str(code))
    await storage.create_bucket("functions")
    right = InstanceContext(
        deployment_id=deployment_id, network=network, image=RUNTIME_IMAGE,
        start_timeout_s=30, stop_grace_s=1, remove=True, env=storage.function_env(),
    )  # fmt: skip
    wrong = msgspec.structs.replace(
        right, env=storage.function_env() | {"MINIO_SECRET_KEY": "not-the-secret-key"}
    )
    event = msgspec.json.encode({"bucket": "functions", "size": 5 * 1024 * 1024})
    async with (
        aiohttp.ClientSession() as session,
        open_instance(engine, spec, 0, right, session) as good,
        open_instance(engine, spec, 1, wrong, session) as bad,
    ):
        result = await good.invoke(event, timeout=60)
        assert result.error is None, result.error
        out = result.output
        assert out["uploaded"] == out["downloaded"] == out["streamed"]
        assert re.fullmatch(r"blob\.[0-9a-f]{8}\.bin", out["key"])
        # The host sees what the function wrote.
        assert out["key"] in await storage.list_objects("functions")
        assert sha256(await storage.download_bytes("functions", out["key"])) == out["uploaded"]

        failed = await bad.invoke(event, timeout=60)
        assert failed.error is not None
        assert failed.error.type == "S3Error"
        assert "SignatureDoesNotMatch" in failed.error.message
