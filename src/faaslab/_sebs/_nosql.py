"""SeBS benchmarks' NoSQL: ``allocate_nosql()``, the tables of a deployment, boto3.

What SeBS does, and so what faaslab does (``sebs/benchmark.py``,
``sebs/storage/scylladb.py``):

- ``allocate_nosql()`` returns ``{table: {"primary_key": k, "secondary_key": k2}}``
  (``secondary_key`` optional); each table is created with string keys
  (``HASH``, then ``RANGE``), pay per request, under a real name of its own
  (SeBS: ``sebs-benchmarks-<resources id>-<benchmark>-<table>``; faaslab:
  ``faaslab-<deployment>-<benchmark>-<table>``);
- ``generate_input(..., nosql_upload)`` fills them with
  ``nosql_upload(benchmark, table, data, (pk_name, pk_value), (sk_name, sk_value))``;
- a benchmark whose ``config.json`` lists the ``nosql`` module gets
  ``boto3==1.28.3`` added to its requirements.

A table declared twice is refused: twice in ``allocate_nosql()``'s dict
literal (Python would silently keep the last), or the same real table by two
functions of one deployment.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from .._errors import SpecError
from .._storage import NoSQLTable, table_real_name
from .._util import parse_file

if TYPE_CHECKING:
    from ._benchmark import SebsBenchmark

__all__ = (
    "NOSQL_REQUIREMENT",
    "TableKeys",
    "add_module_requirements",
    "deployment_tables",
    "read_allocate_nosql",
)

#: What SeBS adds to a benchmark's requirements for the ``nosql`` module.
NOSQL_REQUIREMENT = "boto3==1.28.3"

#: A table's (primary key, secondary key or None), as ``allocate_nosql()`` declares it.
TableKeys = tuple[str, str | None]


def _literal_duplicates(input_py: Path) -> list[str]:
    """Table names a dict literal returned by ``allocate_nosql`` holds more than once."""
    try:
        tree = parse_file(input_py)
    except (OSError, SyntaxError):
        return []  # the loader reports it
    duplicates: list[str] = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "allocate_nosql"):
            continue
        for returned in ast.walk(node):
            if isinstance(returned, ast.Return) and isinstance(returned.value, ast.Dict):
                seen: set[str] = set()
                for key in returned.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        if key.value in seen and key.value not in duplicates:
                            duplicates.append(key.value)
                        seen.add(key.value)
    return duplicates


def read_allocate_nosql(
    module: ModuleType | None, input_py: Path, benchmark: str
) -> dict[str, TableKeys]:
    """The tables ``input.py``'s ``allocate_nosql()`` declares (empty without one)."""
    allocate = getattr(module, "allocate_nosql", None)
    if not callable(allocate):
        return {}
    duplicates = _literal_duplicates(input_py)
    if duplicates:
        raise SpecError(
            f"{benchmark}: input.py's allocate_nosql() declares table {duplicates[0]!r} twice"
        )
    where = f"{benchmark}: input.py's allocate_nosql()"
    try:
        declared = allocate()
    except Exception as exc:
        raise SpecError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(declared, Mapping):
        raise SpecError(f"{where} returned {type(declared).__name__}, not a dict of tables")
    tables: dict[str, TableKeys] = {}
    for table, properties in declared.items():
        if not isinstance(table, str) or not table or "=" in table:
            raise SpecError(f"{where}: {table!r} is not a table name")
        if not isinstance(properties, Mapping):
            raise SpecError(f"{where}: table {table!r} needs {{'primary_key': NAME, ...}}")
        primary, secondary = properties.get("primary_key"), properties.get("secondary_key")
        if not isinstance(primary, str) or not primary:
            raise SpecError(f"{where}: table {table!r} has no primary_key (an attribute name)")
        if secondary is not None and (not isinstance(secondary, str) or not secondary):
            raise SpecError(f"{where}: table {table!r}: secondary_key {secondary!r} is not a name")
        if secondary == primary:
            raise SpecError(f"{where}: table {table!r} uses {primary!r} as both keys")
        tables[table] = (primary, secondary)
    return tables


def deployment_tables(
    deployment_id: str, benchmarks: Mapping[str, SebsBenchmark]
) -> list[NoSQLTable]:
    """Every table the deployment's benchmarks declare, each real table once.

    ``benchmarks`` maps function names to benchmarks; two functions that
    declare the same real table (one benchmark deployed twice) are refused.
    """
    tables: list[NoSQLTable] = []
    owners: dict[str, str] = {}
    for function, benchmark in benchmarks.items():
        for table, (primary, secondary) in benchmark.nosql_tables.items():
            real = table_real_name(deployment_id, benchmark.name, table)
            if real in owners:
                raise SpecError(
                    f"NoSQL table {table!r} of benchmark {benchmark.name} is declared twice, by "
                    f"functions {owners[real]} and {function}: deploy the benchmark once"
                )
            owners[real] = function
            tables.append(
                NoSQLTable(
                    benchmark=benchmark.name,
                    name=table,
                    real_name=real,
                    primary_key=primary,
                    secondary_key=secondary,
                )
            )
    return tables


def add_module_requirements(package: Path, benchmark: SebsBenchmark) -> Path | None:
    """Add what SeBS adds for the benchmark's modules to the package's requirements.

    Returns the requirements file of the package (None when it has none).
    ``package`` is faaslab's own copy (``build_package``), so it may be written.
    """
    existing = package / benchmark.package_manifest if benchmark.package_manifest else None
    if not benchmark.needs_nosql:
        return existing
    target = existing or package / "requirements.txt"
    text = target.read_text() if target.is_file() else ""
    names = {
        line.split("==")[0].split(">")[0].split("<")[0].strip().lower()
        for line in text.splitlines()
    }
    if "boto3" not in names:  # a benchmark's own pin wins
        text = (text if not text or text.endswith("\n") else text + "\n") + NOSQL_REQUIREMENT + "\n"
        target.write_text(text)
        target.chmod(0o644)
    return target
