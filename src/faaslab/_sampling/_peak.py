"""The kernel's own peak watermark of a cgroup: read it, reset it.

The sampled maximum can miss a spike shorter than the interval; the kernel's
watermark cannot. Two flavours:

- v1 ``memory.max_usage_in_bytes``: writing "0" resets it for every reader.
- v2 ``memory.peak`` (Linux >= 5.19): read-only before Linux 6.12; since
  6.12 writing any non-empty string resets it *for reads through the same
  file descriptor* only. A reset is therefore only useful when the same fd
  is kept open and read at the end: that is :class:`PeakWatermark`.

Typical use by a sampler: ``watermark = PeakWatermark.open(files.peak)`` when
sampling starts, ``watermark.read()`` when it stops (the peak over the sampled
window when ``watermark.reset`` is True, over the cgroup's life otherwise).
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType

__all__ = ("PeakWatermark", "read_kernel_peak", "reset_peak")

_V2_PEAK = "memory.peak"


def read_kernel_peak(path: str | None) -> int | None:
    """The peak in bytes, or None when there is no (readable) peak file."""
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return int(file.read(64))
    except (OSError, ValueError):
        return None


def reset_peak(path: str) -> bool:
    """Reset the watermark for every reader; True when the kernel took it.

    Works for v1 ``memory.max_usage_in_bytes``. Always False for v2
    ``memory.peak``, whose reset only lasts as long as the writing fd (use
    :class:`PeakWatermark` for that)."""
    if os.path.basename(path) == _V2_PEAK:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, b"0\n")
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


class PeakWatermark:
    """A peak file held open from the start of a measurement to its end."""

    def __init__(self, path: str, fd: int, reset: bool) -> None:
        self.path = path
        self._fd: int | None = fd
        #: Whether the watermark was reset at open (else it covers the cgroup's life).
        self.reset = reset

    @classmethod
    def open(cls, path: str) -> PeakWatermark:
        """Open `path` and try to reset it. OSError when it cannot be opened at all."""
        if os.path.basename(path) != _V2_PEAK:
            reset = reset_peak(path)
            return cls(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC), reset)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # not writable here: read-only watermark
            return cls(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC), False)
        try:
            os.write(fd, b"reset\n")
        except OSError:  # kernel < 6.12: memory.peak is read-only
            return cls(path, fd, False)
        return cls(path, fd, True)

    def read(self) -> int | None:
        """The watermark in bytes; None when the cgroup is gone or this is closed."""
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 64, 0))
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PeakWatermark:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
