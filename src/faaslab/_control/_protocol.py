"""The supervisor's protocols: the unix socket's requests and replies, the ready pipe.

Everything that crosses the process boundary is a typed msgspec Struct:
requests and replies are two tagged unions spoken as newline-delimited JSON
over the socket; :class:`ReadyMessage` is the one line the supervisor writes
to its parent's pipe once every instance is ready, or why it could not start.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec

from .._aggregate import MemoryReport
from .._deployment import DeploymentStatistics
from .._function import Invocation
from .._sebs import Verdict
from .._util import state_dir

__all__ = (
    "MAX_LINE",
    "ErrorReply",
    "InvokeReply",
    "InvokeRequest",
    "LiveMemory",
    "ReadyMessage",
    "Reply",
    "Request",
    "StatusReply",
    "StatusRequest",
    "StopReply",
    "StopRequest",
    "decode_ready",
    "decode_reply",
    "decode_request",
    "encode",
    "socket_path_for",
)

#: Bound on one request line (an event can be large, but not unbounded).
MAX_LINE = 64 * 1024 * 1024
#: Unix socket paths are limited to 107 bytes on Linux.
MAX_SOCKET_PATH = 100


class InvokeRequest(msgspec.Struct, frozen=True, tag_field="kind", tag="invoke"):
    function: str
    event: dict[str, Any]
    timeout: float | None = None
    #: Ask the SeBS benchmark's validate_output about the output.
    validate: bool = False


class StatusRequest(msgspec.Struct, frozen=True, tag_field="kind", tag="status"):
    pass


class StopRequest(msgspec.Struct, frozen=True, tag_field="kind", tag="stop"):
    stats_path: str | None = None


Request = InvokeRequest | StatusRequest | StopRequest


class ErrorReply(msgspec.Struct, frozen=True, tag_field="kind", tag="error"):
    type: str
    message: str
    exit_code: int = 1


class InvokeReply(msgspec.Struct, frozen=True, tag_field="kind", tag="invocation"):
    invocation: Invocation
    validation: Verdict | None = None


class LiveMemory(msgspec.Struct, frozen=True):
    container_id: str
    instance: str
    source: str
    samples: int
    precision_errors: int
    last_bytes: int | None
    max_bytes: int | None


class StatusReply(msgspec.Struct, frozen=True, tag_field="kind", tag="status"):
    statistics: DeploymentStatistics
    memory: list[LiveMemory]
    sampler_priority: str | None
    supervisor_pid: int


class StopReply(msgspec.Struct, frozen=True, tag_field="kind", tag="stopped"):
    stats_path: str | None
    report_path: str | None
    report: MemoryReport | None
    #: False when another stop did the work (this one wrote nothing).
    by_this_request: bool = True


Reply = ErrorReply | InvokeReply | StatusReply | StopReply



class ReadyMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The supervisor's one line on the ready pipe: ready, or why not."""

    ok: bool
    pid: int | None = None
    socket: str | None = None
    error: str | None = None
    exit_code: int = 1


encode = msgspec.json.Encoder().encode
decode_request = msgspec.json.Decoder(Request).decode
decode_reply = msgspec.json.Decoder(Reply).decode
decode_ready = msgspec.json.Decoder(ReadyMessage).decode


def socket_path_for(state_path: Path) -> Path:
    """The supervisor's socket: beside the state file, or in the state dir when too long."""
    beside = state_path.with_name(f"{state_path.name}.sock")
    if len(str(beside)) <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(str(state_path).encode()).hexdigest()[:16]
    return state_dir() / f"{digest}.sock"
