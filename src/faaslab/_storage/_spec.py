"""What storage the user asks for: :class:`StorageSpec` and the ``--storage`` option."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from .._errors import SpecError

__all__ = (
    "ACCESS_KEY_ENV",
    "SECRET_KEY_ENV",
    "StorageSpec",
    "external_credentials",
    "parse_storage_option",
)

#: Credentials of an external endpoint come from the environment, never from a spec file.
ACCESS_KEY_ENV = "FAASLAB_S3_ACCESS_KEY"
SECRET_KEY_ENV = "FAASLAB_S3_SECRET_KEY"

StorageKind = Literal["seaweedfs", "minio", "external", "none"]
_KINDS: tuple[str, ...] = ("seaweedfs", "minio", "external", "none")


class StorageSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The object storage of a deployment.

    - ``seaweedfs`` (default): a SeaweedFS container on the deployment's network;
    - ``minio``: the ``minio/minio`` image, when the engine has it or can pull it;
    - ``external``: an S3 endpoint that already runs (``endpoint``,
      ``http://HOST:PORT``), keys from ``FAASLAB_S3_ACCESS_KEY`` /
      ``FAASLAB_S3_SECRET_KEY``; no container is started;
    - ``none``: no storage; functions get no ``MINIO_*`` variables.
    """

    kind: StorageKind = "seaweedfs"
    #: ``http://HOST:PORT`` of an external endpoint (kind ``external`` only).
    endpoint: str | None = None
    #: Keep the data volume when the deployment stops (the container always goes).
    keep: bool = False
    #: Bound on the server answering an authenticated S3 call.
    ready_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:  # msgspec checks decoded specs; this catches built ones
            raise SpecError(f"storage.kind: {self.kind!r}; must be one of {', '.join(_KINDS)}")
        if self.kind == "external":
            if self.endpoint is None:
                raise SpecError("storage.endpoint: kind 'external' needs http://HOST:PORT")
            _check_endpoint(self.endpoint)
        elif self.endpoint is not None:
            raise SpecError(
                f"storage.endpoint: {self.endpoint!r} is only for kind 'external', "
                f"not {self.kind!r}"
            )
        if not self.ready_timeout_s > 0:
            raise SpecError(f"storage.ready_timeout_s: {self.ready_timeout_s}; must be > 0")

    @property
    def address(self) -> str | None:
        """``HOST:PORT`` of an external endpoint (what S3 clients take), else None."""
        if self.endpoint is None:
            return None
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        return f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"


def _check_endpoint(endpoint: str) -> None:
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise SpecError(f"storage.endpoint: {endpoint!r} is not a URL: {exc}") from exc
    # The in-container helper speaks plain HTTP (as SeBS's does), so https is refused
    # here rather than failing inside every function.
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise SpecError(f"storage.endpoint: {endpoint!r}; expected http://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SpecError(
            f"storage.endpoint: {endpoint!r}; expected http://HOST:PORT without path or user"
        )


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
