"""The raw memory profile: every sample, appended to one binary file.

Constant memory for any run length; append-only and flushed per batch, so a
crash loses at most the batch being written. The reader streams it back per
key, chunk by chunk, never holding a whole profile: it first indexes the
record headers (16 bytes per record of up to 256 samples), then reads each
record's payload with one pread.

File format (all integers little-endian)::

    b"FLPROF\\x00\\x01"                            magic and format version 1
    records:
      b"K" u32 index, u16 length, utf-8 key        declares a key (instance)
      b"S" u32 index, u32 n, n x i64 times, n x i64 bytes    n samples of a key

A truncated final record (a crash mid-write) is ignored by the reader and
cut off when a writer reopens the file to append.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple

import msgspec

from .._util import pack_int64, unpack_int64

__all__ = ("ProfileChunk", "ProfileReader", "ProfileWriter")

MAGIC = b"FLPROF\x00\x01"
_KEY_RECORD = struct.Struct("<cIH")
_SAMPLES_RECORD = struct.Struct("<cII")
_KEY_TAG, _SAMPLES_TAG = b"K", b"S"


class ProfileChunk(msgspec.Struct, frozen=True):
    """Consecutive samples of one key, as stored."""

    key: str
    times: array[int]
    values: array[int]


class ProfileWriter:
    """Appends samples to a profile file (created, or continued after a crash)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._indexes: dict[str, int] = {}
        self.samples_written = 0
        if self.path.exists() and self.path.stat().st_size > 0:
            reader = ProfileReader(self.path)
            self._indexes = {key: i for i, key in enumerate(reader.keys())}
            good_end = reader.valid_length()
            with open(self.path, "r+b") as file:
                file.truncate(good_end)
            self._file: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        else:
            self._file = open(self.path, "wb")  # noqa: SIM115
            self._file.write(MAGIC)
            self._file.flush()

    def append(self, key: str, times: Sequence[int], values: Sequence[int]) -> None:
        """Append samples of `key` (equal lengths) and flush them to the OS."""
        if len(times) != len(values):
            raise ValueError(f"{len(times)} times for {len(values)} values")
        if not values:
            return
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = len(self._indexes)
            name = key.encode()
            self._file.write(_KEY_RECORD.pack(_KEY_TAG, index, len(name)) + name)
        self._file.write(_SAMPLES_RECORD.pack(_SAMPLES_TAG, index, len(values)))
        self._file.write(pack_int64(times))
        self._file.write(pack_int64(values))
        self._file.flush()
        self.samples_written += len(values)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ProfileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Index(NamedTuple):
    """Where the samples records are, in file order (16 bytes per record of
    up to 256 samples: ~0.06 byte per sample)."""

    names: list[str]
    record_keys: array[int]  # index into names
    offsets: array[int]  # file offset of the times payload
    counts: array[int]  # samples in the record
    end: int  # just past the last complete record
    size: int  # file size when indexed


class ProfileReader:
    """Streams a profile file back, per key, chunk by chunk.

    A first use indexes the file (record headers only, read with pread);
    payloads are then read one record at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as file:
            if file.read(len(MAGIC)) != MAGIC:
                raise ValueError(f"{self.path} is not a faaslab profile (version 1)")
        self._index: _Index | None = None

    def keys(self) -> list[str]:
        """Keys in the order they first appeared."""
        return list(self._current_index().names)

    def count(self, key: str) -> int:
        """Number of samples of `key`."""
        index = self._current_index()
        if key not in index.names:
            return 0
        wanted = index.names.index(key)
        return sum(n for k, n in zip(index.record_keys, index.counts, strict=True) if k == wanted)

    def chunks(self, key: str | None = None) -> Iterator[ProfileChunk]:
        """The stored chunks, of one key or of all keys, in file order."""
        for name, payload, n in self._payloads(key, times=True):
            yield ProfileChunk(name, unpack_int64(payload[: 8 * n]), unpack_int64(payload[8 * n :]))

    def values(self, key: str) -> Iterator[array[int]]:
        """The bytes of `key`'s samples, chunk by chunk (the times are not read)."""
        for _, payload, _ in self._payloads(key, times=False):
            yield unpack_int64(payload)

    def _payloads(self, key: str | None, *, times: bool) -> Iterator[tuple[str, bytes, int]]:
        index = self._current_index()
        if key is not None and key not in index.names:
            return
        wanted = None if key is None else index.names.index(key)
        with open(self.path, "rb", buffering=0) as file:
            fd = file.fileno()
            for k, offset, n in zip(index.record_keys, index.offsets, index.counts, strict=True):
                if wanted is None or k == wanted:
                    if times:
                        yield index.names[k], os.pread(fd, 16 * n, offset), n
                    else:
                        yield index.names[k], os.pread(fd, 8 * n, offset + 8 * n), n

    def valid_length(self) -> int:
        """Bytes up to the end of the last complete record."""
        return self._current_index().end

    def _current_index(self) -> _Index:
        size = self.path.stat().st_size
        if self._index is None or self._index.size != size:
            self._index = self._build_index()
        return self._index

    def _build_index(self) -> _Index:
        """One walk over the record headers; stops quietly at a truncated or
        corrupt tail (a crash mid-write)."""
        names: list[str] = []
        record_keys, offsets, counts = array("I"), array("q"), array("I")
        with open(self.path, "rb", buffering=0) as file:
            fd = file.fileno()
            size = os.fstat(fd).st_size
            position = len(MAGIC)
            while position < size:
                head = os.pread(fd, 64, position)
                tag = head[:1]
                if tag == _KEY_TAG and len(head) >= _KEY_RECORD.size:
                    _, key_index, length = _KEY_RECORD.unpack_from(head)
                    start = position + _KEY_RECORD.size
                    name = os.pread(fd, length, start)
                    if len(name) < length or key_index != len(names):
                        break
                    names.append(name.decode())
                    position = start + length
                elif tag == _SAMPLES_TAG and len(head) >= _SAMPLES_RECORD.size:
                    _, key_index, n = _SAMPLES_RECORD.unpack_from(head)
                    start = position + _SAMPLES_RECORD.size
                    if key_index >= len(names) or start + 16 * n > size:
                        break  # an undeclared key, or a torn payload
                    record_keys.append(key_index)
                    offsets.append(start)
                    counts.append(n)
                    position = start + 16 * n
                else:
                    break  # garbage, or a torn header
        return _Index(names, record_keys, offsets, counts, position, size)
