"""The content-addressed cache of installed dependencies (pip's and npm's alike).

An entry is ``<root>/<key>/``, where the key hashes everything that decides
what gets installed (the manifest, the image id, the installer's options). It
is filled in a staging directory beside it and renamed into place only when
complete, with a marker file recording what it was built from; a failed or
cancelled install leaves nothing behind. Entries are world-readable: function
containers run without ``CAP_DAC_OVERRIDE``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from .._backend import OneShotResult
from .._errors import RequirementsError

__all__ = ("cache_key", "cached_entry", "check_install", "fill_entry")


def cache_key(*parts: str) -> str:
    """A short hash of the parts, length-prefixed so that parts cannot run together."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:32]


def cached_entry(root: Path, key: str, marker: str) -> Path | None:
    """The finished entry for ``key``, or None."""
    final = root / key
    return final if (final / marker).is_file() else None


def _commit(staging: Path, final: Path, marker: str, record: dict[str, Any]) -> None:
    """Mark the staged install finished and move it into place (atomic rename)."""
    (staging / marker).write_text(json.dumps(record, indent=1))
    try:
        staging.rename(final)
    except OSError:
        # Another install of the same key got there first: theirs is as good.
        if not (final / marker).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)


#: One install per entry at a time in this process: three functions of one
#: deployment with the same requirements install them once, not three times.
_filling: weakref.WeakValueDictionary[Path, anyio.Lock] = weakref.WeakValueDictionary()


async def fill_entry(
    root: Path,
    key: str,
    marker: str,
    record: dict[str, Any],
    fill: Callable[[Path], Awaitable[None]],
) -> Path:
    """Make the entry for ``key``: ``fill`` a staging directory, then commit it.

    Waits for an install of the same entry already under way in this process,
    and returns its result when it succeeded.
    """
    lock = _filling.get(root / key)
    if lock is None:
        lock = _filling[root / key] = anyio.Lock()
    async with lock:
        done = cached_entry(root, key, marker)
        if done is not None:
            return done
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        staging.chmod(0o755)
        try:
            await fill(staging)
            await anyio.to_thread.run_sync(_commit, staging, root / key, marker, record)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(staging, ignore_errors=True))
            raise
        return root / key


def check_install(result: OneShotResult, what: str, tool: str, timeout_s: float) -> None:
    """Raise RequirementsError, with the installer's output, unless it exited 0."""
    # npm's pointer to its debug log names a file in the removed container.
    output = "\n".join(
        line for line in result.tail if "_logs/" not in line and "complete log of this" not in line
    ).rstrip()
    if result.exit_code is None:
        raise RequirementsError(
            f"installing {what}: {tool} did not finish within {timeout_s:g} s",
            output=output,
            tool=tool,
        )
    if result.exit_code != 0:
        raise RequirementsError(
            f"installing {what} failed: {tool} exited with code {result.exit_code}",
            output=output,
            tool=tool,
        )
