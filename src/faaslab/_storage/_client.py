"""The host-side S3 client: :class:`S3Client`, built on ``miniopy_async``.

Every failure becomes a faaslab error naming the bucket and key: a
:class:`StorageError` when the store refused or could not be reached, a
:class:`SpecError` when a bucket or key name is invalid before anything is
sent.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp
import anyio
import structlog
from miniopy_async.api import Minio
from miniopy_async.error import MinioException, S3Error

from .._errors import FaaslabError, SpecError, StorageError
from .._util import first_error

__all__ = ("S3Client", "UploadProgress", "open_minio", "open_s3_client")

log = structlog.get_logger()

#: ``progress(bytes_done, bytes_total)`` after each file of a directory upload.
UploadProgress = Callable[[int, int], None]

_AUTH_CODES = frozenset(
    {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidSecurity"}
)
#: aiohttp's threshold for "large body" warnings.
_STREAM_BODIES_FROM = 1 << 20
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "ResourceNotFound", "NoSuchObject"})
#: Answers that say "try again"; retried with backoff for at most RETRY_BUDGET_S.
_RETRYABLE_CODES = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"})
RETRY_FIRST_S = 0.1
RETRY_BUDGET_S = 10.0
T = TypeVar("T")


class S3Client:
    """An S3 endpoint on ``address`` (``host:port``, plain HTTP) with one pair of keys.

    Obtain one with :func:`open_s3_client` (it owns the HTTP connections).
    """

    def __init__(self, address: str, access_key: str, secret_key: str, minio: Minio) -> None:
        self.address = address
        self.access_key = access_key
        self.secret_key = secret_key
        self._minio = minio

    # -- errors --------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> FaaslabError:
        """A faaslab error for a failed request (``doing`` names bucket and key)."""
        if isinstance(exc, S3Error):
            code = exc.code or "?"
            if code in _AUTH_CODES:
                return StorageError(
                    f"{doing}: the storage at {self.address} refused the credentials "
                    f"({code}: {exc.message})"
                )
            return StorageError(f"{doing}: {code}: {exc.message}")
        if isinstance(exc, ValueError):
            # minio checks names before sending anything: a bad name is bad input.
            return SpecError(f"{doing}: {exc}")
        if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
            return StorageError(
                f"{doing}: cannot reach the storage at {self.address}: {exc or type(exc).__name__}"
            )
        if isinstance(exc, MinioException):
            return StorageError(f"{doing}: {exc}")
        return StorageError(f"{doing}: {type(exc).__name__}: {exc}")

    async def _bucket_missing(self, exc: S3Error, bucket: str) -> bool:
        """Whether a not-found answer means the bucket (a HEAD answers 404 for both)."""
        return exc.code == "NoSuchBucket" or not await self.bucket_exists(bucket)

    def _no_bucket(self, doing: str, bucket: str) -> StorageError:
        return StorageError(f"{doing}: bucket {bucket!r} does not exist on {self.address}")

    @asynccontextmanager
    async def _object_request(self, doing: str, bucket: str, key: str) -> AsyncIterator[None]:
        """Turn what one object request raises into a faaslab error naming it."""
        try:
            yield
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                raise await self._not_found(exc, doing, bucket, key) from exc
            raise self._error(exc, doing) from exc
        except Exception as exc:
            raise self._error(exc, doing) from exc

    async def _not_found(self, exc: S3Error, doing: str, bucket: str, key: str) -> StorageError:
        if await self._bucket_missing(exc, bucket):
            return self._no_bucket(doing, bucket)
        return StorageError(f"{doing}: no object {key!r} in bucket {bucket!r}")

    # -- buckets -------------------------------------------------------------

    async def check(self) -> None:
        """One authenticated call (list the buckets): raises when it does not succeed."""
        try:
            await self._minio.list_buckets()
        except Exception as exc:
            raise self._error(exc, "list buckets") from exc

    async def bucket_exists(self, bucket: str) -> bool:
        try:
            return bool(await self._minio.bucket_exists(bucket))
        except Exception as exc:
            raise self._error(exc, f"check bucket {bucket!r}") from exc

    async def create_bucket(self, bucket: str) -> None:
        """Create ``bucket``; nothing happens when it exists already."""
        if await self.bucket_exists(bucket):
            return
        try:
            await self._minio.make_bucket(bucket)
        except S3Error as exc:
            if exc.code == "BucketAlreadyOwnedByYou":  # a concurrent create won
                return
            raise self._error(exc, f"create bucket {bucket!r}") from exc
        except Exception as exc:
            raise self._error(exc, f"create bucket {bucket!r}") from exc
        log.debug("storage.bucket_created", bucket=bucket, address=self.address)

    async def list_objects(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in ``bucket`` under ``prefix`` (recursively), in the store's order."""
        doing = f"list {bucket}/{prefix}"
        keys: list[str] = []
        try:
            async for obj in self._minio.list_objects(
                bucket, prefix=prefix or None, recursive=True
            ):
                if obj.object_name is not None and not obj.is_dir:
                    keys.append(obj.object_name)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                raise self._no_bucket(doing, bucket) from exc
            raise self._error(exc, doing) from exc
        except Exception as exc:
            raise self._error(exc, doing) from exc
        return keys

    # -- objects -------------------------------------------------------------

    async def object_exists(self, bucket: str, key: str) -> bool:
        """Whether ``key`` exists in ``bucket`` (a missing bucket is an error)."""
        doing = f"look up {bucket}/{key}"
        try:
            await self._minio.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code not in _NOT_FOUND_CODES:
                raise self._error(exc, doing) from exc
            if await self._bucket_missing(exc, bucket):
                raise self._no_bucket(doing, bucket) from exc
            return False
        except Exception as exc:
            raise self._error(exc, doing) from exc
        return True

    async def upload_file(self, bucket: str, key: str, path: Path | str) -> None:
        """Upload the local file ``path`` as ``bucket/key``."""
        doing = f"upload {path} to {bucket}/{key}"
        if not Path(path).is_file():
            raise SpecError(f"{doing}: not a file")
        async with self._object_request(doing, bucket, key):
            await _retrying(lambda: self._minio.fput_object(bucket, key, str(path)))

    async def upload_bytes(self, bucket: str, key: str, data: bytes) -> None:
        """Upload ``data`` as ``bucket/key``."""
        doing = f"upload {len(data)} bytes to {bucket}/{key}"
        async with self._object_request(doing, bucket, key):
            await _retrying(
                lambda: self._minio.put_object(bucket, key, io.BytesIO(data), len(data))
            )

    async def upload_directory(
        self,
        bucket: str,
        prefix: str,
        directory: Path | str,
        *,
        concurrency: int = 8,
        progress: UploadProgress | None = None,
    ) -> list[str]:
        """Upload every file below ``directory`` as ``prefix/<relative path>``; return the keys.

        At most ``concurrency`` uploads run at once; ``progress(done, total)``
        (bytes) is called after each file.
        """
        root = Path(directory)
        if not root.is_dir():
            raise SpecError(f"upload {directory} to {bucket}/{prefix}: not a directory")
        if concurrency < 1:
            raise SpecError(f"concurrency: {concurrency}; must be >= 1")
        files = await anyio.to_thread.run_sync(_files_below, root)
        base = prefix.rstrip("/")
        plan = [(f"{base}/{rel}" if base else rel, path, size) for rel, path, size in files]
        total = sum(size for _, _, size in plan)
        done = 0
        limiter = anyio.CapacityLimiter(concurrency)

        async def upload(key: str, path: Path, size: int) -> None:
            nonlocal done
            async with limiter:
                await self.upload_file(bucket, key, path)
            done += size
            if progress is not None:
                progress(done, total)

        # Check the bucket once up front: otherwise every upload fails with the same error.
        if plan and not await self.bucket_exists(bucket):
            raise self._no_bucket(f"upload {directory} to {bucket}/{prefix}", bucket)
        try:
            async with anyio.create_task_group() as tg:
                for key, path, size in plan:
                    tg.start_soon(upload, key, path, size)
        except BaseExceptionGroup as group:
            # The first upload that failed says why; the rest were cancelled.
            first = first_error(group)
            if first is group:
                raise
            raise first from group
        return [key for key, _, _ in plan]

    async def download_file(self, bucket: str, key: str, path: Path | str) -> None:
        """Download ``bucket/key`` to the local file ``path`` (directories created)."""
        doing = f"download {bucket}/{key} to {path}"
        async with self._object_request(doing, bucket, key):
            await _retrying(lambda: self._minio.fget_object(bucket, key, str(path)))

    async def download_bytes(self, bucket: str, key: str) -> bytes:
        """The content of ``bucket/key``."""
        doing = f"download {bucket}/{key}"

        async def read() -> bytes:
            response = await self._minio.get_object(bucket, key)
            try:
                data: bytes = await response.read()
            finally:
                response.release()
            return data

        async with self._object_request(doing, bucket, key):
            content = await _retrying(read)
        return content


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """Run one object request, again while the server says to try again (bounded).

    S3 servers answer 500 InternalError / 503 SlowDown for passing states —
    SeaweedFS does while a restarted volume server registers the data a kept
    volume holds — and S3 clients are expected to retry those.
    """
    delay = RETRY_FIRST_S
    deadline = time.monotonic() + RETRY_BUDGET_S
    while True:
        try:
            return await call()
        except S3Error as exc:
            if exc.code not in _RETRYABLE_CODES or time.monotonic() + delay > deadline:
                raise
            log.debug("storage.retry", code=exc.code, delay_s=delay)
        await anyio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _files_below(root: Path) -> list[tuple[str, Path, int]]:
    """(relative POSIX path, path, size) of every regular file below ``root``, sorted."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path, path.stat().st_size))
    return sorted(found)


@asynccontextmanager
async def open_minio(
    address: str, access_key: str, secret_key: str, *, connections: int = 16
) -> AsyncIterator[Minio]:
    """A ``miniopy_async`` client on its own HTTP connections, closed on exit.

    No retries inside (miniopy's default session retries 5xx answers): a
    refused request fails at once, so readiness polling and error reporting
    stay in faaslab's hands.
    """
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=120),
    )
    try:
        yield Minio(
            address,
            access_key=access_key,
            secret_key=secret_key,
            secure=False,
            session=cast(Any, _StreamingSession(session)),
        )
    finally:
        with anyio.CancelScope(shield=True):
            await session.close()


class _StreamingSession:
    """The session miniopy sends through, with large bodies turned into streams.

    miniopy hands aiohttp each object (or multipart part, 5 MiB and more) as
    one ``bytes`` body; aiohttp warns that writing such a body at once can
    stall the event loop (a ResourceWarning from 1 MiB). A BytesIO is written
    in chunks instead.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def request(self, method: str, url: Any, *, data: Any = None, **kwargs: Any) -> Any:
        if isinstance(data, bytes | bytearray) and len(data) >= _STREAM_BODIES_FROM:
            data = io.BytesIO(data)
        return self._session.request(method, url, data=data, **kwargs)

    async def close(self) -> None:
        await self._session.close()


@asynccontextmanager
async def open_s3_client(
    address: str, access_key: str, secret_key: str, *, connections: int = 16
) -> AsyncIterator[S3Client]:
    """A client for the S3 endpoint ``address`` (``host:port``, plain HTTP)."""
    async with open_minio(address, access_key, secret_key, connections=connections) as minio:
        yield S3Client(address, access_key, secret_key, minio)
