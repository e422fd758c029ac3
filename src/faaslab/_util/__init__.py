"""Leaf helpers that every room may use (they import nothing of faaslab but ``_errors``).

- :func:`pack_int64` / :func:`unpack_int64` (``_int64``) — little-endian int64
  arrays: the sampling frames and the profile file.
- :func:`first_error` (``_groups``) — the error a user should see from an
  exception group.
- :func:`state_dir` (``_paths``) — faaslab's own directory on the host.
- :func:`parse_file` (``_ast``) — ``ast.parse`` of a file, safe from
  concurrent threads.
- :func:`read_line` (``_pipes``) — the ready line of a detached child.
"""

from ._ast import parse_file
from ._groups import first_error
from ._int64 import pack_int64, unpack_int64
from ._paths import state_dir
from ._pipes import read_line

__all__ = (
    "first_error",
    "pack_int64",
    "parse_file",
    "read_line",
    "state_dir",
    "unpack_int64",
)
