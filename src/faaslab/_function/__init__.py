"""The Function actor: one container serving one function instance.

- :func:`open_instance` / :class:`Instance` (``_actor``) — create, start,
  wait for ``/alive``, serve invocations, watch for exit, stop; the
  container's create body (:func:`container_config`) and what the backend
  is asked to run (:func:`instance_request`).
- :class:`Lifecycle` (``_lifecycle``) — the instance's lifecycle as an
  explicit transition table, no I/O.
- :class:`Invocation` (``_invocation``) — the record of one call.
- :class:`TimingConnector`, :class:`HttpTimes` (``_http_times``) — a call's
  connection and first-byte times, as SeBS's pycurl times them.
- :func:`check_loads` (``_check``) — a function loaded once in its runtime
  (the language's check command) before any instance starts.
"""

from ._actor import (
    CONTAINER_PORT,
    ExitInfo,
    Instance,
    InstanceContext,
    container_config,
    instance_request,
    open_instance,
)
from ._check import LoadCheck, check_loads, default_verdicts, load_failure
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
    "LoadCheck",
    "RemoteError",
    "RuntimeAnswer",
    "TimingConnector",
    "check_loads",
    "container_config",
    "default_verdicts",
    "instance_request",
    "load_failure",
    "open_instance",
)
