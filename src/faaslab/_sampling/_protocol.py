"""Frames between the host (the asyncio side) and the sampling process.

The two sides talk over the worker's stdin and stdout. Every frame is a
4-byte little-endian length followed by that many bytes of msgpack: one
frozen, tagged msgspec Struct. Encoders and decoders are built once here.

host → worker::

    Register(key, path, interval_ns)   open `path` once, sample it every interval_ns
    Unregister(key)                    stop sampling key (answered by Ended)
    Shutdown()                         flush everything and exit

worker → host::

    Hello(pid, priority)               once, first; priority says which scheduling it got
    Registered(key, t0_ns)             deadlines of key are t0_ns + k * interval_ns
    Refused(key, error)                a Register could not be honoured
    Batch(key, times, values, lateness, late, skipped)
    Ended(key, reason, samples, late, skipped)

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
    "Batch",
    "Ended",
    "FrameReader",
    "Hello",
    "HostCommand",
    "Refused",
    "Register",
    "Registered",
    "Shutdown",
    "Unregister",
    "WorkerEvent",
    "decode_command",
    "decode_event",
    "encode_frame",
    "pack_int64",
    "unpack_int64",
)

#: Length prefix of every frame.
FRAME_HEADER = struct.Struct("<I")
#: Refuse frames larger than this: a corrupt stream, not a real message.
MAX_FRAME = 64 * 1024 * 1024


class Register(msgspec.Struct, frozen=True, tag="register"):
    key: str
    path: str
    interval_ns: int


class Unregister(msgspec.Struct, frozen=True, tag="unregister"):
    key: str


class Shutdown(msgspec.Struct, frozen=True, tag="shutdown"):
    pass


class Hello(msgspec.Struct, frozen=True, tag="hello"):
    pid: int
    priority: str


class Registered(msgspec.Struct, frozen=True, tag="registered"):
    key: str
    t0_ns: int


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


HostCommand = Register | Unregister | Shutdown
WorkerEvent = Hello | Registered | Refused | Batch | Ended

_encoder = msgspec.msgpack.Encoder()
_command_decoder: msgspec.msgpack.Decoder[HostCommand] = msgspec.msgpack.Decoder(HostCommand)
_event_decoder: msgspec.msgpack.Decoder[WorkerEvent] = msgspec.msgpack.Decoder(WorkerEvent)


def encode_frame(message: HostCommand | WorkerEvent) -> bytes:
    """One complete frame: length prefix and msgpack body."""
    body = _encoder.encode(message)
    return FRAME_HEADER.pack(len(body)) + body


def decode_command(body: bytes | memoryview) -> HostCommand:
    return _command_decoder.decode(body)


def decode_event(body: bytes | memoryview) -> WorkerEvent:
    return _event_decoder.decode(body)


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
