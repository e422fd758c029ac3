"""One invocation's record, decoding the runtime's HTTP answer, and sandbox hints.

A handler that writes outside ``/tmp`` meets the sandbox (a read-only root
filesystem, as on AWS Lambda) and fails with the kernel's words, whatever
its language: Python's ``[Errno 30] Read-only file system: '/x'``, Node's
``EROFS: read-only file system, open '/x'``. :func:`explain_sandbox` adds
why, on the host side, so every runtime image gets the same explanation.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ("Invocation", "RemoteError", "RuntimeAnswer", "explain_sandbox")

#: The one writable place of a function container.
WRITABLE = "/tmp"


class RemoteError(msgspec.Struct, frozen=True):
    """What the handler raised, as the runtime reported it."""

    type: str
    message: str
    traceback: str = ""


class _Result(msgspec.Struct, frozen=True):
    output: Any = None


class RuntimeAnswer(msgspec.Struct, frozen=True):
    """The runtime's JSON answer to ``POST /`` (SeBS's fields plus faaslab's)."""

    begin: str | None = None
    end: str | None = None
    request_id: str = ""
    is_cold: bool = False
    result: _Result | None = None
    compute_time_us: int | None = None
    instance: str | None = None
    error: RemoteError | None = None


class Invocation(msgspec.Struct, frozen=True, kw_only=True):
    """One call of a function, as measured on both sides.

    Server times (``begin``/``end``, unix seconds) are taken by the runtime
    immediately around the handler; client times around the HTTP exchange.
    """

    request_id: str
    function: str
    instance: str
    container_id: str
    is_cold: bool
    begin: float
    end: float
    compute_time_us: int
    client_send: float
    client_receive: float
    #: Client-side round trip in seconds (monotonic clock).
    latency_s: float
    output: Any = None
    error: RemoteError | None = None
    #: Instance memory just before the call and its peak during it (bytes), when sampled.
    memory_before_bytes: int | None = None
    memory_peak_bytes: int | None = None
    #: How the peak was obtained: "kernel-watermark", "samples", or None.
    memory_method: str | None = None
    #: Client-side HTTP phases, seconds from the request's start (``_http_times``):
    #: the connection ready (SeBS's ``http_startup``) and the answer's head read
    #: (``http_first_byte_return``); the first is None when the session's
    #: connector is not a ``TimingConnector``.
    http_connect_s: float | None = None
    http_first_byte_s: float | None = None
    #: CPU time the instance's cgroup used during the call (µs: user + system,
    #: every process of the container), when its cgroup files are readable.
    #: With ``concurrency`` > 1 calls that overlap share it.
    cpu_time_us: int | None = None
    #: The platform's cold start: the call waited for its instance to start
    #: (placed on one still starting). ``is_cold`` is the runtime's: the
    #: instance's first call, also when it was started ahead of demand.
    cold_start: bool | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def explain_sandbox(error: RemoteError | None, tmp_mb: int) -> RemoteError | None:
    """The handler's error with the sandbox's reason added, when the sandbox refused it."""
    if error is None:
        return None
    text = error.message.lower()
    if "read-only file system" in text:
        hint = (
            " (faaslab runs functions as AWS Lambda does: as an unprivileged user on a "
            f"read-only root filesystem, the code mounted read-only; only {WRITABLE} is "
            "writable, and SeBS's benchmarks write only there)"
        )
    elif "no space left on device" in text:  # /tmp is the only writable filesystem
        hint = (
            f" ({WRITABLE} holds {tmp_mb} MB, the function's tmp_mb, as Lambda's ephemeral "
            "storage; it is a tmpfs, so what it holds also counts against the memory limit)"
        )
    else:
        return error
    return msgspec.structs.replace(error, message=error.message + hint)
