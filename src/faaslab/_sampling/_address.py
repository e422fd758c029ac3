"""Where a host sampler listens: the transports, and the files beside its socket.

Two transports speak the same frames (``_protocol``):

- ``unix:///path/sampler.sock`` — the host's own sampler, started on first
  use. The socket is mode 0600 in faaslab's state directory (itself 0700),
  so only its user reaches it. Beside it: ``sampler.pid`` (held locked by the
  live sampler), ``sampler.lock`` (taken by whoever starts one) and
  ``sampler.log``.
- ``tcp://host:port`` — a sampler on another node (a Swarm global service on
  the deployment's overlay network); never started by a client, and every
  registration is authenticated by the deployment's token.

``FAASLAB_SAMPLER_ADDRESS`` chooses; by default the unix socket in
:func:`~faaslab._util.state_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from .._errors import SpecError
from .._util import state_dir

__all__ = ("ADDRESS_ENV", "SamplerAddress", "default_address", "parse_address")

#: Where clients look for the host sampler.
ADDRESS_ENV = "FAASLAB_SAMPLER_ADDRESS"
SOCKET_NAME = "sampler.sock"
#: Linux limits unix socket paths to 107 bytes.
MAX_SOCKET_PATH = 107


class SamplerAddress(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["unix", "tcp"]
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.kind == "unix" else f"tcp://{self.host}:{self.port}"

    def beside(self, suffix: str) -> Path:
        """A file beside a unix socket: ``sampler.pid``, ``sampler.lock``, ``sampler.log``."""
        if self.kind != "unix":
            raise ValueError(f"{self} has no files beside it")
        return Path(self.path).with_suffix(suffix)


def parse_address(text: str) -> SamplerAddress:
    """``unix:///abs/path`` or ``tcp://host:port``; SpecError names what is wrong."""
    if text.startswith("unix://"):
        path = text.removeprefix("unix://")
        if not os.path.isabs(path):
            raise SpecError(f"sampler address {text!r}: the socket path must be absolute")
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise SpecError(
                f"sampler address {text!r}: a unix socket path has at most "
                f"{MAX_SOCKET_PATH} bytes; choose a shorter one"
            )
        return SamplerAddress(kind="unix", path=path)
    if text.startswith("tcp://"):
        host, sep, port = text.removeprefix("tcp://").rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise SpecError(f"sampler address {text!r}: expected tcp://host:port")
        return SamplerAddress(kind="tcp", host=host.strip("[]"), port=int(port))
    raise SpecError(f"sampler address {text!r}: expected unix:///path or tcp://host:port")


def default_address() -> SamplerAddress:
    """``FAASLAB_SAMPLER_ADDRESS``, else the unix socket in faaslab's state directory."""
    explicit = os.environ.get(ADDRESS_ENV, "").strip()
    if explicit:
        return parse_address(explicit)
    return parse_address(f"unix://{state_dir() / SOCKET_NAME}")
