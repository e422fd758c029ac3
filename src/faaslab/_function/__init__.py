"""The Function actor: one container serving one function instance.

- :func:`open_instance` / :class:`Instance` (``_actor``) — create, start,
  wait for ``/alive``, serve invocations, watch for exit, stop; the
  container's create body (:func:`container_config`).
- :class:`Lifecycle` (``_lifecycle``) — the instance's lifecycle as an
  explicit transition table, no I/O.
- :class:`Invocation` (``_invocation``) — the record of one call.
- :class:`TimingConnector`, :class:`HttpTimes` (``_http_times``) — a call's
  connection and first-byte times, as SeBS's pycurl times them.
"""

from ._actor import (
    CONTAINER_PORT,
    ExitInfo,
    Instance,
    InstanceContext,
    container_config,
    open_instance,
)
from ._http_times import HttpTimes, TimingConnector
from ._invocation import Invocation, RemoteError, RuntimeAnswer
from ._lifecycle import TRANSITIONS, InstanceState, Lifecycle

__all__ = (
    "CONTAINER_PORT",
    "TRANSITIONS",
    "ExitInfo",
    "HttpTimes",
    "Instance",
    "InstanceContext",
    "InstanceState",
    "Invocation",
    "Lifecycle",
    "RemoteError",
    "RuntimeAnswer",
    "TimingConnector",
    "container_config",
    "open_instance",
)
