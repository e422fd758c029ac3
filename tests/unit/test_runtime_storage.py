"""The SeBS storage helper against a real S3 server: SeaweedFS ``weed mini`` on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from minio import Minio
from minio.error import S3Error

from faaslab.runtimes.python.storage import storage

WEED = Path(sysconfig.get_path("scripts")) / "weed"
STARTUP_DEADLINE_S = 60.0
HEX8 = r"[0-9a-f]{8}"
READY_BANNER = "All enabled components are running"


@dataclass(frozen=True)
class S3Endpoint:
    address: str
    access_key: str
    secret_key: str

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            "MINIO_ADDRESS": self.address,
            "MINIO_ACCESS_KEY": self.access_key,
            "MINIO_SECRET_KEY": self.secret_key,
        } | overrides


def _free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all distinct (sockets held until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _free_port_pair(offset: int) -> int:
    """A free port p with p + offset free too.

    weed's admin worker dials the admin gRPC port as admin.port + 10000 even
    when -admin.port.grpc says otherwise, so the pair must be kept.
    """
    for _ in range(100):
        with socket.socket() as low, socket.socket() as high:
            low.bind(("127.0.0.1", 0))
            port = low.getsockname()[1]
            if port + offset > 65535:
                continue
            try:
                high.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free port pair found")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    data = tmp_path_factory.mktemp("weed")
    s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc = _free_ports(8)
    endpoint = S3Endpoint(f"127.0.0.1:{s3}", secrets.token_hex(8), secrets.token_hex(16))
    command = [
        str(WEED), "mini", f"-dir={data}",
        # Everything on loopback: -ip is what components advertise, -ip.bind where they listen.
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-admin.port={_free_port_pair(10000)}",  # its gRPC port is +10000
        # Off: what the tests do not need, and phoning home.
        "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",
        # A missing bucket must be an error, as with MinIO.
        "-s3.autoCreateBucket=false",
        "-volume.preStopSeconds=0",  # faster shutdown
        "-master.volumeSizeLimitMB=64",
        # Default is /tmp/seaweedfs-*-<port>.sock; keep them in the data dir.
        f"-s3.localSocket={data / 's3.sock'}", f"-filer.localSocket={data / 'filer.sock'}",
    ]  # fmt: skip
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        # Its gRPC unix sockets go to os.TempDir() whatever the flags say.
        "TMPDIR": str(data),
    }
    log_path = data / "weed.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(endpoint, proc, log_path)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(endpoint: S3Endpoint, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Ready = the start-up banner is out and an authenticated call succeeds.

    The S3 port answers before start-up ends; a SIGTERM then (a short test
    run) sometimes left weed hanging past 15 s and its sockets behind, so the
    banner, printed once every component runs, is waited for too.
    """
    client = Minio(
        endpoint.address,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        secure=False,
    )
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weed mini exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        if READY_BANNER not in log.read_text(errors="replace"):
            time.sleep(0.05)
            continue
        try:
            # A bare TCP check first: minio's own retries would make each refused
            # connection take seconds.
            with socket.create_connection(("127.0.0.1", int(endpoint.address.split(":")[1])), 1):
                pass
            client.list_buckets()
            return
        except Exception as exc:
            last_error = exc
            time.sleep(0.1)
    pytest.fail(f"weed mini not serving S3 after {STARTUP_DEADLINE_S} s: {last_error!r}")


@pytest.fixture(scope="module")
def helper(s3: S3Endpoint) -> storage:
    return storage.from_env(s3.env())


@pytest.fixture(scope="module")
def bucket(helper: storage) -> str:
    name = f"faaslab-test-{secrets.token_hex(4)}"
    helper.client.make_bucket(name)
    return name


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- without a server --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("out.png", rf"out\.{HEX8}\.png"),
        ("README", rf"README\.{HEX8}"),
        ("archive.tar.gz", rf"archive\.tar\.{HEX8}\.gz"),
        ("dir/sub/result.json", rf"dir/sub/result\.{HEX8}\.json"),
    ],
)
def test_unique_name_inserts_eight_hex_before_the_extension(name: str, pattern: str) -> None:
    first, second = storage.unique_name(name), storage.unique_name(name)
    assert re.fullmatch(pattern, first)
    assert first != second


@pytest.mark.parametrize("missing", ["MINIO_ADDRESS", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"])
def test_missing_environment_names_the_variable(missing: str) -> None:
    env = S3Endpoint("127.0.0.1:9", "key", "secret").env()
    del env[missing]
    with pytest.raises(RuntimeError, match=missing):
        storage.from_env(env)


def test_get_instance_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_instance", None)
    for name in ("MINIO_ADDRESS", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="MINIO_ADDRESS"):
        storage.get_instance()


def test_download_directory_refuses_keys_escaping_the_target(tmp_path: Path) -> None:
    fetched: list[str] = []

    class FakeClient:
        def list_objects(self, bucket: str, prefix: str, recursive: bool) -> list[Any]:
            return [SimpleNamespace(object_name=f"{prefix}../../escape.txt", is_dir=False)]

        def fget_object(self, bucket: str, key: str, filepath: str) -> None:
            fetched.append(filepath)

    with pytest.raises(ValueError, match="escapes"):
        storage(FakeClient()).download_directory("bucket", "data/", str(tmp_path))  # type: ignore[arg-type]
    assert fetched == []


# -- against weed mini -------------------------------------------------------


def test_get_instance_is_a_singleton_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, s3: S3Endpoint
) -> None:
    monkeypatch.setattr(storage, "_instance", None)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    first = storage.get_instance()
    assert storage.get_instance() is first
    first.client.list_buckets()  # authenticated with the environment's credentials


def test_upload_download_roundtrip(helper: storage, bucket: str, tmp_path: Path) -> None:
    # Just over 5 MiB: minio uploads it in two parts (multipart), the path big inputs take.
    source = tmp_path / "input.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024 + 1234))
    key = helper.upload(bucket, "input.bin", str(source))
    assert re.fullmatch(rf"input\.{HEX8}\.bin", key)

    target = tmp_path / "downloaded" / "input.bin"
    target.parent.mkdir()
    helper.download(bucket, key, str(target))
    assert _sha256(target) == _sha256(source)


def test_upload_stream_download_stream(helper: storage, bucket: str) -> None:
    payload = os.urandom(100_000)
    stream = io.BytesIO()
    stream.write(payload)  # not rewound: the helper uploads the whole stream anyway
    key = helper.upload_stream(bucket, "result.json", stream)
    assert re.fullmatch(rf"result\.{HEX8}\.json", key)
    assert helper.download_stream(bucket, key) == payload

    again = helper.upload_stream(bucket, "result.json", io.BytesIO(b"second"))
    assert again != key
    assert helper.download_stream(bucket, again) == b"second"
    assert helper.download_stream(bucket, key) == payload  # not overwritten


def test_download_directory_keeps_the_key_structure(
    helper: storage, bucket: str, tmp_path: Path
) -> None:
    objects = {
        "dataset/a.txt": b"a",
        "dataset/sub/b.txt": b"bb",
        "dataset/sub/deeper/c.bin": os.urandom(1000),
        "elsewhere/d.txt": b"not under the prefix",
    }
    for key, data in objects.items():
        helper.client.put_object(bucket, key, io.BytesIO(data), len(data))

    out = tmp_path / "out"
    out.mkdir()
    helper.download_directory(bucket, "dataset/", str(out))
    written = {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in out.rglob("*")
        if path.is_file()
    }
    # As in SeBS: the whole key, prefix included, below the target directory.
    assert written == {k: v for k, v in objects.items() if k.startswith("dataset/")}


def test_wrong_credentials_raise(s3: S3Endpoint, bucket: str, tmp_path: Path) -> None:
    wrong = storage.from_env(s3.env(MINIO_SECRET_KEY="not-the-secret"))
    with pytest.raises(S3Error) as excinfo:
        wrong.upload_stream(bucket, "x.txt", io.BytesIO(b"x"))
    assert excinfo.value.code in {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}
    with pytest.raises(S3Error):
        wrong.download_stream(bucket, "anything")


def test_missing_bucket_or_key_raise(helper: storage, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "small.txt"
    source.write_bytes(b"small")
    with pytest.raises(S3Error, match="NoSuchBucket"):
        helper.upload("faaslab-no-such-bucket", "small.txt", str(source))
    with pytest.raises(S3Error, match="NoSuchBucket"):
        helper.download_stream("faaslab-no-such-bucket", "small.txt")
    with pytest.raises(S3Error, match="NoSuchKey"):
        helper.download(bucket, "no-such-key.txt", str(tmp_path / "never.txt"))
    assert not (tmp_path / "never.txt").exists()
