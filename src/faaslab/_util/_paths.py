"""Where faaslab keeps its own files on the host."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ("state_dir",)


def state_dir() -> Path:
    """faaslab's state directory (daemon pid and log, caches), created 0700.

    ``FAASLAB_STATE_DIR`` wins; otherwise ``$XDG_STATE_HOME/faaslab`` or
    ``~/.local/state/faaslab``.
    """
    explicit = os.environ.get("FAASLAB_STATE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "faaslab"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
