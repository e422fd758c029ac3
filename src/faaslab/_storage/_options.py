"""The CLI's ``--storage`` option and an external endpoint's keys.

The spec itself, :class:`~faaslab._spec.StorageSpec`, lives with the other specs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .._errors import SpecError
from .._spec import NoSQLSpec, StorageSpec

__all__ = (
    "ACCESS_KEY_ENV",
    "SECRET_KEY_ENV",
    "external_credentials",
    "parse_nosql_option",
    "parse_storage_option",
)

#: Credentials of an external endpoint come from the environment, never from a spec file.
ACCESS_KEY_ENV = "FAASLAB_S3_ACCESS_KEY"
SECRET_KEY_ENV = "FAASLAB_S3_SECRET_KEY"


def parse_storage_option(text: str, *, keep: bool = False) -> StorageSpec:
    """The CLI's ``--storage seaweedfs|minio|none|http://HOST:PORT``."""
    value = text.strip()
    if value.startswith(("http://", "https://")):
        return StorageSpec(kind="external", endpoint=value, keep=keep)
    if value in ("seaweedfs", "minio", "none"):
        return StorageSpec(kind=value, keep=keep)  # type: ignore[arg-type]
    raise SpecError(f"--storage: {text!r}; expected seaweedfs, minio, none or http://HOST:PORT")


def parse_nosql_option(text: str | None, *, keep: bool = False) -> NoSQLSpec:
    """The CLI's ``--nosql [dynalite|scylladb|none|auto]`` (None: not given, i.e. auto)."""
    value = "auto" if text is None else text.strip()
    if value in ("auto", "dynalite", "scylladb", "none"):
        return NoSQLSpec(kind=value, keep=keep)  # type: ignore[arg-type]
    hint = ""
    if os.path.isdir(value):  # `--nosql DIR`: the optional KIND took a function directory
        hint = " (it took a function directory: put --nosql after them, or write --nosql=KIND)"
    raise SpecError(f"--nosql: {text!r}; expected dynalite, scylladb, none or auto{hint}")


def external_credentials(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The access and secret key of an external endpoint, from the environment."""
    missing = [name for name in (ACCESS_KEY_ENV, SECRET_KEY_ENV) if not environ.get(name)]
    if missing:
        raise SpecError(
            f"storage: an external endpoint needs its keys in the environment: "
            f"{' and '.join(missing)} not set"
        )
    return environ[ACCESS_KEY_ENV], environ[SECRET_KEY_ENV]
