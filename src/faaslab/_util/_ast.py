"""``ast.parse`` of a file, one thread at a time.

Benchmarks and functions are read in worker threads, several at once. In
CPython 3.11 (and 3.12 before 3.12.1), building the ``ast`` objects keeps
its recursion-depth bookkeeping in interpreter-wide state, so two threads
parsing together can fail with ``SystemError: AST constructor recursion
depth mismatch`` (CPython gh-106905). A lock makes that impossible; parses
take milliseconds, so it costs nothing that shows.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

__all__ = ("parse_file",)

_parsing = threading.Lock()


def parse_file(path: Path) -> ast.Module:
    """The module's syntax tree (``OSError``, ``SyntaxError`` as ``ast.parse`` raises them)."""
    source = path.read_bytes()
    with _parsing:
        return ast.parse(source, filename=str(path))
