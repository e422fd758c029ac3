"""Arrays of int64 as little-endian bytes: the sampling frames and the profile file."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

__all__ = ("pack_int64", "unpack_int64")

_BIG_ENDIAN_HOST = sys.byteorder == "big"


def pack_int64(values: Sequence[int]) -> bytes:
    """Little-endian bytes of int64 values (an ``array('q')`` is taken as it is)."""
    data = values if isinstance(values, array) and values.typecode == "q" else array("q", values)
    if _BIG_ENDIAN_HOST:  # pragma: no cover - no big-endian CI
        data = array("q", data)
        data.byteswap()
    return data.tobytes()


def unpack_int64(data: bytes) -> array[int]:
    """The ``array('q')`` that :func:`pack_int64` packed."""
    values = array("q")
    values.frombytes(data)
    if _BIG_ENDIAN_HOST:  # pragma: no cover
        values.byteswap()
    return values
