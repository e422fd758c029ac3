"""Object storage: the Storage actor and the host-side S3 client.

- :mod:`._spec` — :class:`StorageSpec` (seaweedfs, minio, external, none) and
  the CLI's ``--storage`` option;
- :mod:`._server` — the server container's recipe and create body (no I/O);
- :mod:`._client` — :class:`S3Client` over ``miniopy_async``: buckets, files,
  directories (concurrent, bounded), listing; errors become faaslab errors;
- :mod:`._actor` — ``open_storage`` and :class:`Storage` (an S3Client that
  also knows where functions find it, its keys, and its deployment-file entry).

With kind ``none``, ``open_storage`` yields None: callers need no special case
to enter it, and a None storage means "functions get no ``MINIO_*``".
"""

from ._actor import Storage, open_storage
from ._client import S3Client, UploadProgress, open_s3_client
from ._server import NETWORK_ALIAS, S3_PORT
from ._spec import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    StorageSpec,
    external_credentials,
    parse_storage_option,
)

__all__ = (
    "ACCESS_KEY_ENV",
    "NETWORK_ALIAS",
    "S3_PORT",
    "SECRET_KEY_ENV",
    "S3Client",
    "Storage",
    "StorageSpec",
    "UploadProgress",
    "external_credentials",
    "open_s3_client",
    "open_storage",
    "parse_storage_option",
)
