"""Per-invocation records: one JSON line each in ``invocations.jsonl``.

Records are appended and flushed as they come, so an interrupted or crashed
run keeps everything recorded up to that moment; a line cut short by a crash
is skipped when reading back. Every line has every field (``null`` when it
does not apply), which keeps the file easy for jq and pandas.

Times: ``t_*`` are seconds since the run began on the host's monotonic
clock, the same clock the memory samples use; ``begin``/``end`` are the
runtime's unix times around the handler.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import msgspec

from .._errors import FaaslabError, SpecError
from .._function import Invocation
from ._spec import StartMode

__all__ = (
    "ErrorRecord",
    "InvocationRecord",
    "RecordWriter",
    "decode_record",
    "encode_record",
    "error_of",
    "read_records",
)


class ErrorRecord(msgspec.Struct, frozen=True):
    """Why an invocation failed.

    ``kind``: ``handler`` (the function raised; ``type`` is its exception
    class) or ``platform`` (no answer: a timeout, a lost or unstartable
    instance, a failed function; ``type`` is faaslab's error class).
    """

    kind: Literal["handler", "platform"]
    type: str
    message: str


class InvocationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One invocation of an experiment."""

    deployment: str
    function: str
    workload: str
    start: StartMode
    repetition: int
    #: The arrival's index within its workload run (open loop: dropped arrivals leave gaps).
    seq: int
    #: When the call was due (open loop: its Poisson arrival; closed loop: = t_start).
    t_scheduled: float
    #: The client's whole step: waiting for a free instance (or creating a fresh one) and the call.
    t_start: float
    t_end: float
    instance: str | None = None
    container_id: str | None = None
    is_cold: bool | None = None
    request_id: str | None = None
    #: The HTTP round trip (client side).
    latency_s: float | None = None
    #: The runtime's unix times around the handler, and its duration.
    begin: float | None = None
    end: float | None = None
    compute_time_us: int | None = None
    #: Cold invocations: the fresh container's create-to-ready time.
    container_start_s: float | None = None
    memory_before_bytes: int | None = None
    memory_peak_bytes: int | None = None
    memory_method: str | None = None
    #: CPU time the instance's cgroup used during the call (µs), beside its memory peak.
    cpu_time_us: int | None = None
    #: The call waited for its instance to start (the platform's cold start);
    #: ``is_cold`` is the runtime's first-call flag.
    cold_start: bool | None = None
    #: Trace loop: the ``HashFunction`` whose invocation this was.
    trace_function: str | None = None
    error: ErrorRecord | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(InvocationRecord)


def encode_record(record: InvocationRecord) -> bytes:
    """One JSON line, newline included."""
    return _encoder.encode(record) + b"\n"


def decode_record(line: bytes) -> InvocationRecord:
    return _decoder.decode(line)


def error_of(invocation: Invocation | None, exc: FaaslabError | None = None) -> ErrorRecord | None:
    """The error record of a returned invocation or of a raised faaslab error."""
    if exc is not None:
        return ErrorRecord("platform", type(exc).__name__, str(exc))
    if invocation is not None and invocation.error is not None:
        return ErrorRecord("handler", invocation.error.type, invocation.error.message)
    return None


class RecordWriter:
    """Appends records to ``invocations.jsonl``, flushed one by one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.written = 0
        self.errors = 0
        self._file: BinaryIO | None = open(self.path, "ab")  # noqa: SIM115 - closed in close()

    def write(self, record: InvocationRecord) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: the record writer is closed")
        self._file.write(encode_record(record))
        # Flushed per record: a Ctrl-C or a crash keeps every finished call.
        self._file.flush()
        self.written += 1
        self.errors += record.error is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_records(path: str | os.PathLike[str]) -> Iterator[InvocationRecord]:
    """The records of a file, in order.

    A last line cut short (a crash mid-write) is skipped; a bad line before
    it is corruption and raises :class:`SpecError` with its number.
    """
    with open(path, "rb") as file:
        pending: tuple[int, bytes] | None = None
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            if pending is not None:
                yield _decode_line(path, *pending)
            pending = (number, line)
        if pending is not None:
            try:
                yield decode_record(pending[1])
            except msgspec.DecodeError:
                return


def _decode_line(path: str | os.PathLike[str], number: int, line: bytes) -> InvocationRecord:
    try:
        return decode_record(line)
    except msgspec.DecodeError as exc:
        raise SpecError(f"{path}: line {number} is not an invocation record: {exc}") from exc
