"""Reading the one line a detached child writes to its starter's pipe."""

from __future__ import annotations

import os
import select
import time

__all__ = ("read_line",)


def read_line(fd: int, timeout: float) -> bytes:
    """The first line written to `fd` (without its newline); what came before
    an end of file when the writer closed without one (b"" for nothing).
    TimeoutError when no whole line came within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no line within {timeout:g} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk
    return data.split(b"\n", 1)[0]
