"""Client-side HTTP phase times of one invocation, from aiohttp's tracing signals.

SeBS reports two of pycurl's times for every HTTP invocation:
``PRETRANSFER_TIME`` (``times.http_startup``: from the start until the
connection is ready and the request is about to be sent) and
``STARTTRANSFER_TIME`` (``times.http_first_byte_return``: until the first
byte of the answer arrives). faaslab measures the same two phases with
aiohttp's :class:`aiohttp.TraceConfig`, on the monotonic clock, in seconds
from the request's start:

- ``connected_s``: when the connector handed over a connection (a fresh one
  connected, or a kept-alive one reused — then it is a few µs);
- ``first_byte_s``: when the answer's status line and headers were read
  (aiohttp signals nothing earlier; for the runtime's small headers the
  difference from the very first byte is the parsing, µs).

The session must be created with :func:`http_times_trace` among its
``trace_configs``; a request passes an :class:`HttpTimes` as its
``trace_request_ctx``. Without the trace config the times stay None.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp

__all__ = ("HttpTimes", "http_times_trace")


class HttpTimes:
    """The phase times of one request (perf_counter seconds; None until seen)."""

    __slots__ = ("connected", "first_byte", "start")

    def __init__(self) -> None:
        self.start: float | None = None
        self.connected: float | None = None
        self.first_byte: float | None = None

    @property
    def connected_s(self) -> float | None:
        """Seconds from the start until the connection was ready (SeBS's ``http_startup``)."""
        if self.start is None or self.connected is None:
            return None
        return self.connected - self.start

    @property
    def first_byte_s(self) -> float | None:
        """Seconds from the start until the answer's head arrived (``http_first_byte_return``)."""
        if self.start is None or self.first_byte is None:
            return None
        return self.first_byte - self.start


def _times(context: SimpleNamespace) -> HttpTimes | None:
    times = context.trace_request_ctx
    return times if isinstance(times, HttpTimes) else None


async def _on_start(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    times = _times(context)
    if times is not None:
        times.start = time.perf_counter()


async def _on_connection(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    times = _times(context)
    if times is not None and times.connected is None:
        times.connected = time.perf_counter()


async def _on_head(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    times = _times(context)
    if times is not None:
        times.first_byte = time.perf_counter()


def http_times_trace() -> aiohttp.TraceConfig:
    """The trace config that fills a request's :class:`HttpTimes` (one per session)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_on_start)
    trace.on_connection_create_end.append(_on_connection)
    trace.on_connection_reuseconn.append(_on_connection)
    trace.on_request_end.append(_on_head)
    trace.freeze()
    return trace
