"""The CLI's ``--storage`` option and an external endpoint's keys.

The spec itself, :class:`~faaslab._spec.StorageSpec`, lives with the other specs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .._errors import SpecError
from .._spec import StorageSpec

__all__ = ("ACCESS_KEY_ENV", "SECRET_KEY_ENV", "external_credentials", "parse_storage_option")

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


def external_credentials(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The access and secret key of an external endpoint, from the environment."""
    missing = [name for name in (ACCESS_KEY_ENV, SECRET_KEY_ENV) if not environ.get(name)]
    if missing:
        raise SpecError(
            f"storage: an external endpoint needs its keys in the environment: "
            f"{' and '.join(missing)} not set"
        )
    return environ[ACCESS_KEY_ENV], environ[SECRET_KEY_ENV]
