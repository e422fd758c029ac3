"""SeBS-compatible object storage helper for functions (``from . import storage``).

Same class name, method names and argument order as SeBS's local helper
(``benchmarks/wrappers/local/python/storage.py``), so benchmark functions run
unchanged::

    client = storage.storage.get_instance()
    key = client.upload(bucket, "out.png", "/tmp/out.png")  # -> "out.1a2b3c4d.png"

The endpoint and credentials come from ``MINIO_ADDRESS`` (host:port),
``MINIO_ACCESS_KEY`` and ``MINIO_SECRET_KEY``. ``minio`` is imported only when
the first client is built, so functions that never touch storage run without
it. Errors from ``minio`` (``S3Error`` and friends) propagate unchanged.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from minio import Minio

ENV_VARS = ("MINIO_ADDRESS", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")


class storage:  # lower-case: SeBS's name, which functions import
    """A thin wrapper over one ``minio.Minio`` client (``self.client``, as in SeBS)."""

    _instance: storage | None = None
    _lock = threading.Lock()

    def __init__(self, client: Minio) -> None:
        self.client = client

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> storage:
        """Build a client from the ``MINIO_*`` variables (plain HTTP, as SeBS does)."""
        missing = [name for name in ENV_VARS if not environ.get(name)]
        if missing:
            raise RuntimeError(
                f"storage is not configured: {', '.join(missing)} not set in the environment"
            )
        from minio import Minio  # here, not at the top: see the module docstring

        return cls(
            Minio(
                environ["MINIO_ADDRESS"],
                access_key=environ["MINIO_ACCESS_KEY"],
                secret_key=environ["MINIO_SECRET_KEY"],
                secure=False,
            )
        )

    @staticmethod
    def get_instance() -> storage:
        """The process-wide client, built on first use."""
        with storage._lock:  # a function may call this from several threads
            if storage._instance is None:
                storage._instance = storage.from_env()
            return storage._instance

    @staticmethod
    def unique_name(name: str) -> str:
        """``out.png`` → ``out.1a2b3c4d.png``: repeated runs never overwrite each other."""
        stem, extension = os.path.splitext(name)
        return f"{stem}.{uuid.uuid4().hex[:8]}{extension}"

    def upload(self, bucket: str, file: str, filepath: str) -> str:
        """Upload the local ``filepath`` under a unique key made from ``file``; return the key."""
        key = self.unique_name(file)
        self.client.fput_object(bucket, key, filepath)
        return key

    def download(self, bucket: str, key: str, filepath: str) -> None:
        self.client.fget_object(bucket, key, filepath)

    def download_directory(self, bucket: str, prefix: str, path: str) -> None:
        """Download every object under ``prefix`` to ``path/<key>``, as SeBS does.

        The whole key, prefix included, is kept below ``path``, directories created.
        """
        root = Path(path).resolve()
        for obj in self.client.list_objects(bucket, prefix=prefix, recursive=True):
            key = obj.object_name
            if key is None or obj.is_dir:
                continue
            target = (root / key).resolve()
            # A key such as "../../etc/x" must not write outside `path`.
            if not target.is_relative_to(root):
                raise ValueError(f"object key {key!r} escapes the directory {path!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.fget_object(bucket, key, str(target))

    def upload_stream(self, bucket: str, file: str, bytes_io: BinaryIO) -> str:
        """Upload the whole content of a seekable binary stream; return the unique key.

        The stream is rewound first, so forgetting ``seek(0)`` after writing
        into a BytesIO uploads the content rather than failing.
        """
        key = self.unique_name(file)
        length = bytes_io.seek(0, io.SEEK_END)
        bytes_io.seek(0)
        self.client.put_object(bucket, key, bytes_io, length)
        return key

    def download_stream(self, bucket: str, key: str) -> bytes:
        response = self.client.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()
