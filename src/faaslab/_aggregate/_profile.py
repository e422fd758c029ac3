"""The raw memory profile: every sample, appended to one binary file.

Constant memory for any run length; append-only and flushed per batch, so a
crash loses at most the batch being written. The reader streams it back per
key, chunk by chunk, never holding a whole profile.

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
import sys
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple

import msgspec

__all__ = ("ProfileChunk", "ProfileReader", "ProfileWriter")

MAGIC = b"FLPROF\x00\x01"
_KEY_RECORD = struct.Struct("<cIH")
_SAMPLES_RECORD = struct.Struct("<cII")
_KEY_TAG, _SAMPLES_TAG = b"K", b"S"
_READ_BUFFER = 1024 * 1024
_BIG_ENDIAN_HOST = sys.byteorder == "big"


class ProfileChunk(msgspec.Struct, frozen=True):
    """Consecutive samples of one key, as stored."""

    key: str
    times: array[int]
    values: array[int]


def _int64_bytes(values: Sequence[int]) -> bytes:
    data = values if isinstance(values, array) and values.typecode == "q" else array("q", values)
    if _BIG_ENDIAN_HOST:  # pragma: no cover
        data = array("q", data)
        data.byteswap()
    return data.tobytes()


def _int64_array(data: bytes) -> array[int]:
    values = array("q")
    values.frombytes(data)
    if _BIG_ENDIAN_HOST:  # pragma: no cover
        values.byteswap()
    return values


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
        self._file.write(_int64_bytes(times))
        self._file.write(_int64_bytes(values))
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


class _Record(NamedTuple):
    key_index: int
    samples: int
    times: array[int] | None  # None when the payload was skipped
    values: array[int] | None
    end: int  # file offset just past this record


class ProfileReader:
    """Streams a profile file back. Each method makes one pass over the file,
    reading the payloads it needs and seeking over the others."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as file:
            if file.read(len(MAGIC)) != MAGIC:
                raise ValueError(f"{self.path} is not a faaslab profile (version 1)")

    def keys(self) -> list[str]:
        """Keys in the order they first appeared."""
        names: list[str] = []
        for _ in self._scan(names, wanted=None):
            pass
        return names

    def count(self, key: str) -> int:
        """Number of samples of `key` (reads record headers only)."""
        names: list[str] = []
        return sum(r.samples for r in self._scan(names, wanted=None) if names[r.key_index] == key)

    def chunks(self, key: str | None = None) -> Iterator[ProfileChunk]:
        """The stored chunks, of one key or of all keys, in file order."""
        names: list[str] = []
        for record in self._scan(names, wanted=key, all_keys=key is None):
            if record.times is not None and record.values is not None:
                yield ProfileChunk(names[record.key_index], record.times, record.values)

    def values(self, key: str) -> Iterator[array[int]]:
        """The bytes of `key`'s samples, chunk by chunk."""
        for chunk in self.chunks(key):
            yield chunk.values

    def valid_length(self) -> int:
        """Bytes up to the end of the last complete record."""
        end = len(MAGIC)
        for record in self._scan([], wanted=None):
            end = record.end
        return end

    def _scan(
        self, names: list[str], *, wanted: str | None, all_keys: bool = False
    ) -> Iterator[_Record]:
        """Every complete record; key records yield count 0. Fills `names`.
        Stops quietly at a truncated or corrupt tail."""
        with open(self.path, "rb", buffering=_READ_BUFFER) as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(len(MAGIC))
            while True:
                tag = file.read(1)
                if tag == _KEY_TAG:
                    head = file.read(_KEY_RECORD.size - 1)
                    if len(head) < _KEY_RECORD.size - 1:
                        return
                    _, index, length = _KEY_RECORD.unpack(tag + head)
                    name = file.read(length)
                    if len(name) < length or index != len(names):
                        return
                    names.append(name.decode())
                    yield _Record(index, 0, None, None, file.tell())
                elif tag == _SAMPLES_TAG:
                    head = file.read(_SAMPLES_RECORD.size - 1)
                    if len(head) < _SAMPLES_RECORD.size - 1:
                        return
                    _, index, n = _SAMPLES_RECORD.unpack(tag + head)
                    if index >= len(names):
                        return  # samples of an undeclared key: corrupt
                    payload = 8 * n
                    end = file.tell() + 2 * payload
                    if end > size:
                        return  # truncated by a crash
                    if all_keys or names[index] == wanted:
                        times = _int64_array(file.read(payload))
                        values = _int64_array(file.read(payload))
                        yield _Record(index, n, times, values, end)
                    else:
                        file.seek(end)
                        yield _Record(index, n, None, None, end)
                else:
                    return  # end of file, or garbage after a crash
