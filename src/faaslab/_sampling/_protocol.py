"""Frames between a client (the asyncio side) and a sampling process.

One protocol for every transport: a private worker's stdin and stdout
(``_worker``), the host sampler's unix socket, and its TCP listener for a
sampler on another node (``_hostd``). Every frame is a 4-byte little-endian
length followed by that many bytes of msgpack: one frozen, tagged msgspec
Struct. Encoders and decoders are built once here.

client → sampler::

    Attach(protocol, deployment, token, engine)
                                       socket only, first: this connection serves
                                       one deployment (answered by Hello or Denied)
    Register(key, path, interval_ns, container)
                                       open `path` once, sample it every interval_ns;
                                       on a socket, `container` (its id) must carry the
                                       deployment's label and `path` must be its memory
                                       file ("" = find it)
    Unregister(key)                    stop sampling key (answered by Ended)
    Shutdown()                         flush everything and end: the worker exits; on a
                                       socket only this connection ends (its keys
                                       answered by Ended, then the connection closes)
    StatusQuery()                      answered by Status (no Attach needed)

sampler → client::

    Hello(pid, priority)               once, first (after Attach on a socket)
    Denied(error)                      an Attach was refused; the connection closes
    Registered(key, t0_ns, path)       deadlines of key are t0_ns + k * interval_ns
    Refused(key, error)                a Register could not be honoured
    Batch(key, times, values, lateness, late, skipped)
    Ended(key, reason, samples, late, skipped)
    Status(pid, priority, deployments, files, ...)

A socket client never sees another connection's keys: every frame about a
key goes to the connection that registered it, and keys are per connection.

In a Batch, ``times``, ``values`` and ``lateness`` are packed little-endian
int64 arrays of equal length: time.monotonic_ns() at the read, the bytes read,
and the read time minus its deadline. ``late`` counts the deadlines of this
batch that were not met within one interval: samples read more than one
interval after their deadline plus deadlines skipped because the worker fell
behind (``skipped`` counts the latter alone; they have no sample).
"""

from __future__ import annotations

import struct

import msgspec

from .._util import pack_int64, unpack_int64

__all__ = (
    "FRAME_HEADER",
    "PROTOCOL_VERSION",
    "Attach",
    "Batch",
    "DaemonReady",
    "Denied",
    "Ended",
    "FrameReader",
    "Hello",
    "HostCommand",
    "Refused",
    "Register",
    "Registered",
    "Shutdown",
    "Status",
    "StatusQuery",
    "Unregister",
    "WorkerEvent",
    "decode_command",
    "decode_event",
    "decode_ready",
    "encode_frame",
    "pack_int64",
    "unpack_int64",
)

#: Length prefix of every frame.
FRAME_HEADER = struct.Struct("<I")
#: Refuse frames larger than this: a corrupt stream, not a real message.
MAX_FRAME = 64 * 1024 * 1024
#: Bumped on any change a peer of the previous version would misread.
PROTOCOL_VERSION = 1


class Attach(msgspec.Struct, frozen=True, tag="attach"):
    #: PROTOCOL_VERSION of the client: a sampler of another version says Denied.
    protocol: int
    #: The deployment this connection serves: it may sample only containers
    #: that carry ``faaslab.deployment=<deployment>``.
    deployment: str
    #: The deployment's sampler token (its SHA-256 is on its containers'
    #: labels); required over TCP, checked wherever a container carries one.
    token: str = ""
    #: Where the deployment's containers run (unix socket clients only; a TCP
    #: listener checks against the engine of its own node).
    engine: str = ""
    #: Who is asking, for the sampler's log ("pid 123 on host").
    client: str = ""


class Register(msgspec.Struct, frozen=True, tag="register"):
    key: str
    path: str
    interval_ns: int
    #: The container whose memory file `path` is (socket clients; "" in a pipe).
    container: str = ""


class Unregister(msgspec.Struct, frozen=True, tag="unregister"):
    key: str


class Shutdown(msgspec.Struct, frozen=True, tag="shutdown"):
    pass


class StatusQuery(msgspec.Struct, frozen=True, tag="status_query"):
    pass


class Hello(msgspec.Struct, frozen=True, tag="hello"):
    pid: int
    priority: str


class Denied(msgspec.Struct, frozen=True, tag="denied"):
    error: str


class Registered(msgspec.Struct, frozen=True, tag="registered"):
    key: str
    t0_ns: int
    #: The file sampled (the one asked for, or the one the sampler found).
    path: str = ""


class Refused(msgspec.Struct, frozen=True, tag="refused"):
    key: str
    error: str


class Batch(msgspec.Struct, frozen=True, tag="batch"):
    key: str
    times: bytes
    values: bytes
    lateness: bytes
    late: int
    skipped: int = 0


class Ended(msgspec.Struct, frozen=True, tag="ended"):
    key: str
    reason: str
    samples: int
    late: int
    skipped: int = 0


class Status(msgspec.Struct, frozen=True, tag="status"):
    pid: int
    priority: str
    #: Distinct deployments attached now.
    deployments: int
    #: Files sampled now, over every connection.
    files: int
    connections: int = 0
    #: Files sampled now per attached deployment (0: attached, nothing
    #: registered). A deployment whose client died is gone from here at once.
    attached: dict[str, int] = {}
    #: The distinct intervals sampled (one deadline grid each), in ns.
    intervals_ns: tuple[int, ...] = ()
    #: Where it listens ("unix:///...", "tcp://host:port").
    listening: tuple[str, ...] = ()
    uptime_s: float = 0.0


class DaemonReady(msgspec.Struct, frozen=True):
    """The one message the host sampler writes to its starter's pipe."""

    ok: bool
    pid: int = 0
    error: str = ""
    #: The TCP port it listens on, when asked for port 0.
    tcp_port: int = 0


HostCommand = Attach | Register | Unregister | Shutdown | StatusQuery
WorkerEvent = Hello | Denied | Registered | Refused | Batch | Ended | Status

_encoder = msgspec.msgpack.Encoder()
_command_decoder: msgspec.msgpack.Decoder[HostCommand] = msgspec.msgpack.Decoder(HostCommand)
_event_decoder: msgspec.msgpack.Decoder[WorkerEvent] = msgspec.msgpack.Decoder(WorkerEvent)


def encode_frame(message: msgspec.Struct) -> bytes:
    """One complete frame: length prefix and msgpack body (any Struct: the
    host sampler's access checker speaks these frames too)."""
    body = _encoder.encode(message)
    return FRAME_HEADER.pack(len(body)) + body


def decode_command(body: bytes | memoryview) -> HostCommand:
    return _command_decoder.decode(body)


def decode_event(body: bytes | memoryview) -> WorkerEvent:
    return _event_decoder.decode(body)


_ready_decoder = msgspec.json.Decoder(DaemonReady)


def decode_ready(line: bytes) -> DaemonReady:
    return _ready_decoder.decode(line)


class FrameReader:
    """Splits a byte stream into frame bodies; feed it whatever read() returned."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        bodies: list[bytes] = []
        start = 0
        header = FRAME_HEADER.size
        while len(buffer) - start >= header:
            (length,) = FRAME_HEADER.unpack_from(buffer, start)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes: the stream is corrupt")
            end = start + header + length
            if end > len(buffer):
                break
            bodies.append(bytes(buffer[start + header : end]))
            start = end
        if start:
            del buffer[:start]
        return bodies

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)
