"""The detached supervisor: its typed protocols, the server, the client.

- ``_protocol`` — requests, replies and the ready message: tagged msgspec
  Structs, newline-delimited JSON over a unix socket (mode 0600) beside the
  state file, one line on the ready pipe.
- ``_server`` — :func:`supervise`: runs a deployment and serves the socket.
- ``_client`` — :func:`connect` to a supervisor; :func:`spawn_supervisor`
  starts one (``python -m faaslab._control``, the ``__main__`` module) and
  waits until it is ready.
"""

from ._client import ControlClient, connect, spawn_supervisor
from ._protocol import (
    ErrorReply,
    InvokeReply,
    InvokeRequest,
    LiveMemory,
    ReadyMessage,
    Reply,
    Request,
    StatusReply,
    StatusRequest,
    StopReply,
    StopRequest,
    socket_path_for,
)
from ._server import ReadyCallback, supervise

__all__ = (
    "ControlClient",
    "ErrorReply",
    "InvokeReply",
    "InvokeRequest",
    "LiveMemory",
    "ReadyCallback",
    "ReadyMessage",
    "Reply",
    "Request",
    "StatusReply",
    "StatusRequest",
    "StopReply",
    "StopRequest",
    "connect",
    "socket_path_for",
    "spawn_supervisor",
    "supervise",
)
