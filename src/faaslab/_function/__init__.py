"""The Function actor: one container serving one function instance.

- :func:`open_instance` / :class:`Instance` (``_actor``) — create, start,
  wait for ``/alive``, serve invocations, watch for exit, stop; the
  container's create body (:func:`container_config`) and what the backend
  is asked to run (:func:`instance_request`).
- :class:`Lifecycle` (``_lifecycle``) — the instance's lifecycle as an
  explicit transition table, no I/O.
- :class:`Invocation` (``_invocation``) — the record of one call.
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
from ._invocation import Invocation, RemoteError, RuntimeAnswer
from ._lifecycle import TRANSITIONS, InstanceState, Lifecycle

__all__ = (
    "CONTAINER_PORT",
    "TRANSITIONS",
    "ExitInfo",
    "Instance",
    "InstanceContext",
    "InstanceState",
    "Invocation",
    "Lifecycle",
    "RemoteError",
    "RuntimeAnswer",
    "container_config",
    "instance_request",
    "open_instance",
)
