"""BENCHMARK on the command line: a directory, or a name found as SeBS finds it.

SeBS looks a name up under its checkout's ``benchmarks/`` directory
(``benchmarks/<group>/<name>``, e.g. ``benchmarks/100.webapps/110.dynamic-html``).
faaslab looks under ``benchmarks/`` of each root in turn: the current
directory first, then ``--benchmarks-root`` (see :func:`benchmark_roots`).
A name that is not there is one :class:`SpecError` line listing the close
matches, including by number (``110``) and by the part after it
(``dynamic-html``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from .._errors import SpecError

__all__ = ("benchmark_data_dir", "benchmark_roots", "find_benchmark", "list_benchmarks")

#: The file that makes a directory a SeBS benchmark.
CONFIG = "config.json"
_MAX_SUGGESTIONS = 5


def benchmark_roots(benchmarks_root: Path | str | None = None) -> tuple[Path, ...]:
    """Where names are looked up, in order: the current directory, then ``--benchmarks-root``."""
    roots = [Path.cwd()]
    if benchmarks_root is not None:
        roots.append(Path(benchmarks_root))
    return tuple(roots)


def list_benchmarks(roots: Iterable[Path | str]) -> dict[str, Path]:
    """Every benchmark under ``<root>/benchmarks/<group>/``, by name; the first root wins."""
    found: dict[str, Path] = {}
    for root in roots:
        benchmarks = Path(root) / "benchmarks"
        if not benchmarks.is_dir():
            continue
        for group in sorted(p for p in benchmarks.iterdir() if p.is_dir()):
            for directory in sorted(p for p in group.iterdir() if p.is_dir()):
                if (directory / CONFIG).is_file():
                    found.setdefault(directory.name, directory.resolve())
    return found


def find_benchmark(name_or_path: Path | str, roots: Iterable[Path | str]) -> Path:
    """The benchmark's directory (resolved).

    An existing directory is taken as it is and must hold ``config.json``;
    something with a ``/`` in it is a path that must exist; anything else is
    a name looked up under ``<root>/benchmarks/<group>/<name>``.
    """
    given = str(name_or_path)
    path = Path(given)
    if path.is_dir():
        if not (path / CONFIG).is_file():
            raise SpecError(f"{given}: not a SeBS benchmark directory (it has no {CONFIG})")
        return path.resolve()
    if "/" in given or path.is_absolute():
        raise SpecError(f"{given}: no such benchmark directory")
    searched = tuple(Path(root) for root in roots)
    benchmarks = list_benchmarks(searched)
    if given in benchmarks:
        return benchmarks[given]
    where = ", ".join(str(root / "benchmarks") for root in searched)
    if not benchmarks:
        raise SpecError(
            f"benchmark {given!r}: not found: no benchmarks/<group>/<name> directories in "
            f"{where}; run from a SeBS checkout, pass --benchmarks-root, or give the "
            "benchmark's directory"
        )
    suggestions = _close_matches(given, list(benchmarks))
    if suggestions:
        raise SpecError(
            f"benchmark {given!r}: not found in {where}; close matches: {', '.join(suggestions)}"
        )
    raise SpecError(
        f"benchmark {given!r}: not found in {where} ({len(benchmarks)} benchmarks there, "
        "none close)"
    )


def _close_matches(query: str, names: list[str]) -> list[str]:
    """Names by number (``110``) or by the part after it (``dynamic-html``), then by spelling."""
    by_part = [name for name in names if query in (name.partition(".")[0], name.partition(".")[2])]
    tails = {name.partition(".")[2]: name for name in names if "." in name}
    by_tail = [tails[t] for t in difflib.get_close_matches(query, list(tails), n=_MAX_SUGGESTIONS)]
    by_spelling = difflib.get_close_matches(query, names, n=_MAX_SUGGESTIONS)
    return list(dict.fromkeys([*by_part, *by_tail, *by_spelling]))[:_MAX_SUGGESTIONS]


def benchmark_data_dir(benchmark_dir: Path | str) -> Path | None:
    """The benchmark's data as SeBS finds it: ``<root>/benchmarks-data/<group>/<name>``.

    Only for a benchmark inside a checkout (``<root>/benchmarks/<group>/<name>``)
    whose data directory exists; None otherwise.
    """
    directory = Path(benchmark_dir).resolve()
    group = directory.parent
    if group.parent.name != "benchmarks":
        return None
    data = group.parent.parent / "benchmarks-data" / group.name / directory.name
    return data if data.is_dir() else None
