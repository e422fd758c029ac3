"""Client-side HTTP phase times of one invocation, as SeBS's pycurl reports them.

SeBS reports two of pycurl's times for every HTTP invocation:
``PRETRANSFER_TIME`` (``times.http_startup``: from the start until the
connection is ready and the request is about to be sent) and
``STARTTRANSFER_TIME`` (``times.http_first_byte_return``: until the first
byte of the answer arrives). faaslab measures the same two phases on the
monotonic clock, in seconds from the moment the call starts:

- ``connected_s``: when the session's connector handed over a connection
  (a fresh one connected, or a kept-alive one reused — then it is µs);
- ``first_byte_s``: when the answer's status line and headers have been
  read (aiohttp gives nothing earlier; for the runtime's small head the
  difference from its very first byte is the parsing, µs).

The connection time comes from :class:`TimingConnector`, the deployment
session's connector, which stamps the :class:`HttpTimes` of the call running
in its task (a context variable set around the request by :func:`timing`).
aiohttp's ``TraceConfig`` would do the same but costs about 75 µs a call on
this machine (a coroutine and a parameters object per signal, for every
signal); this costs a context-variable lookup. A session with another
connector leaves ``connected_s`` None.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

__all__ = ("HttpTimes", "TimingConnector", "end_timing", "timing")

_CURRENT: ContextVar[HttpTimes | None] = ContextVar("faaslab_http_times", default=None)


class HttpTimes:
    """The phase times of one call (perf_counter seconds; None until seen)."""

    __slots__ = ("connected", "first_byte", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.connected: float | None = None
        self.first_byte: float | None = None

    @property
    def connected_s(self) -> float | None:
        """Seconds from the start until the connection was ready (SeBS's ``http_startup``)."""
        return None if self.connected is None else self.connected - self.start

    @property
    def first_byte_s(self) -> float | None:
        """Seconds from the start until the answer's head arrived (``http_first_byte_return``)."""
        return None if self.first_byte is None else self.first_byte - self.start


def timing(times: HttpTimes) -> Token[HttpTimes | None]:
    """Make ``times`` the current call's in this task, until :func:`end_timing` (its token)."""
    return _CURRENT.set(times)


def end_timing(token: Token[HttpTimes | None]) -> None:
    _CURRENT.reset(token)


class TimingConnector(aiohttp.TCPConnector):
    """A TCP connector that stamps the current call's :class:`HttpTimes` when connected."""

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        times = _CURRENT.get()
        if times is not None and times.connected is None:
            times.connected = time.perf_counter()
        return connection
