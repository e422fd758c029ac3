"""The NoSQL server's container and tables: recipes, names, environment (no I/O here).

Two servers of the DynamoDB API:

- ``dynalite`` (the offline default, ``faaslab/dynalite``): LevelDB on
  ``/data``, validation and error messages matched against live DynamoDB.
  It requires every request to be SigV4-signed (an ``Authorization`` header
  with credential, signature and signed headers, and a date) but checks
  neither the key nor the signature: the per-deployment keys are handed out,
  not enforced.
- ``scylladb``: ScyllaDB's Alternator, with SeBS's arguments (``--smp 1
  --memory 750M --overprovisioned 1 --alternator-port 8000
  --alternator-write-isolation=only_rmw_uses_lwt``), data in
  ``/var/lib/scylla``; Alternator's authorization is off by default, as in SeBS.

SeBS's own wrappers sign with the literal key ``None`` (Python and Node.js
alike), so a server that enforced keys would refuse them: neither does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from .._backend import Label, hardened_host_config, healthcheck, loopback_ports
from .._errors import SpecError
from .._spec import NoSQLSpec
from ._nosql_image import DYNALITE_VERSION, nosql_image

__all__ = (
    "NOSQL_ALIAS",
    "NOSQL_PORT",
    "SCYLLADB_IMAGE",
    "NoSQLRecipe",
    "NoSQLTable",
    "dynalite_recipe",
    "nosql_container_config",
    "nosql_function_env",
    "nosql_server_kind",
    "scylladb_recipe",
    "table_real_name",
)

#: The Alternator port SeBS uses; dynalite listens on the same.
NOSQL_PORT = 8000
#: Functions reach the server as ``nosql:8000`` on the deployment network.
NOSQL_ALIAS = "nosql"
SCYLLADB_IMAGE = "scylladb/scylla:6.0"
#: What every SeBS wrapper checks ``NOSQL_STORAGE_TYPE`` against.
SEBS_TYPE = "scylladb"
#: The region the keys are scoped to (neither server checks it; SDKs need one).
REGION = "us-east-1"

#: DynamoDB's table name rule; Alternator allows at most 222 characters.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,222}$")


class NoSQLTable(msgspec.Struct, frozen=True, kw_only=True):
    """One table: the name a function uses, the real one, and its key schema (strings)."""

    #: The benchmark (``130.crud-api``) that declared it in ``allocate_nosql()``.
    benchmark: str
    #: What functions pass to ``nosql`` (``shopping_cart``).
    name: str
    #: What the server knows it as (``NOSQL_STORAGE_TABLE_<name>``).
    real_name: str
    primary_key: str
    secondary_key: str | None = None


def table_real_name(deployment_id: str, benchmark: str, table: str) -> str:
    """``faaslab-<deployment>-<benchmark>-<table>``, after SeBS's ``sebs-benchmarks-<id>-<b>-<t>``.

    One server serves one deployment, but a kept volume may be reused: the
    deployment id in the name keeps two runs' tables apart.
    """
    name = f"faaslab-{deployment_id}-{benchmark}-{table}"
    if not _TABLE_NAME.match(name):
        raise SpecError(
            f"{benchmark}: table {table!r} makes the table name {name!r}, which DynamoDB "
            "refuses (letters, digits, '_', '.', '-'; 3 to 222 characters)"
        )
    return name


def nosql_server_kind(spec: NoSQLSpec, needed_by: list[str]) -> str | None:
    """Which server to start (None: none), given the functions that need one."""
    if spec.kind == "none":
        if needed_by:
            raise SpecError(
                f"{', '.join(needed_by)}: needs NoSQL storage (config.json's modules list "
                "'nosql' or input.py has allocate_nosql), but nosql is 'none': "
                "use --nosql dynalite (or drop --nosql none)"
            )
        return None
    if spec.kind == "auto":
        return "dynalite" if needed_by else None
    return spec.kind


def nosql_function_env(
    function_endpoint: str, access_key: str, secret_key: str, tables: list[NoSQLTable]
) -> dict[str, str]:
    """What SeBS's ``nosql`` wrappers (and plain boto3 or aws-sdk) read inside a function."""
    env = {
        "NOSQL_STORAGE_TYPE": SEBS_TYPE,
        "NOSQL_STORAGE_ENDPOINT": function_endpoint,
        # SeBS's wrappers pass their own literal keys; SDKs built from the
        # environment (faaslab's nosql.py, plain boto3, aws-sdk) use these.
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    for table in tables:
        env[f"NOSQL_STORAGE_TABLE_{table.name}"] = table.real_name
    return env


class NoSQLRecipe(msgspec.Struct, frozen=True, kw_only=True):
    """What one kind of DynamoDB-API server needs to run in a container."""

    kind: str
    image: str
    version: str
    command: list[str]
    #: Where the data volume is mounted.
    data_dir: str
    memory_mb: int
    cpus: float
    #: The engine's health check (Docker ``Healthcheck.Test``).
    health: list[str]
    #: Root filesystem read-only and every capability dropped (when the server allows it).
    hardened: bool


def dynalite_recipe(spec: NoSQLSpec) -> NoSQLRecipe:
    probe = (
        f"require('http').get('http://127.0.0.1:{NOSQL_PORT}/',"
        "r=>process.exit(r.statusCode?0:1)).on('error',()=>process.exit(1))"
    )
    return NoSQLRecipe(
        kind="dynalite",
        image=nosql_image(),
        version=DYNALITE_VERSION,
        command=["--port", str(NOSQL_PORT), "--path", "/data"],
        data_dir="/data",
        memory_mb=spec.memory_mb or 256,
        cpus=spec.cpus,
        health=["CMD", "/usr/bin/node", "-e", probe],
        hardened=True,
    )


def scylladb_recipe(spec: NoSQLSpec) -> NoSQLRecipe:
    return NoSQLRecipe(
        kind="scylladb",
        image=SCYLLADB_IMAGE,
        version=SCYLLADB_IMAGE.rpartition(":")[2],
        command=[
            *("--smp", "1", "--memory", "750M", "--overprovisioned", "1"),
            *("--alternator-port", str(NOSQL_PORT)),
            "--alternator-write-isolation=only_rmw_uses_lwt",
            *("--developer-mode", "1"),
        ],
        data_dir="/var/lib/scylla",
        # Scylla's own --memory plus what its supervisor and Python tools need.
        memory_mb=spec.memory_mb or 1024,
        cpus=spec.cpus,
        # Alternator answers GET / as its health check.
        health=["CMD-SHELL", f"curl -sf http://127.0.0.1:{NOSQL_PORT}/ >/dev/null || exit 1"],
        # Its image runs supervisord and writes below /etc and /var: not hardened here.
        hardened=False,
    )


def nosql_container_config(
    recipe: NoSQLRecipe,
    *,
    deployment_id: str,
    network: str,
    volume: str,
    command: list[str] | None = None,
    host_port: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The engine's create-container body for the NoSQL server (pure, testable).

    ``command`` replaces the recipe's arguments (debugging, tests);
    ``host_port`` asks for that host port (the server recreated after an
    engine restart keeps its address); ``labels`` (the deployment's owner and
    state file) go beside faaslab's own.
    """
    host: dict[str, Any] = {
        **hardened_host_config(
            memory_mb=recipe.memory_mb,
            cpus=recipe.cpus,
            tmp_mb=16 if recipe.hardened else None,
            read_only=recipe.hardened,
        ),
        "Binds": [f"{volume}:{recipe.data_dir}"],
        "PortBindings": loopback_ports(NOSQL_PORT, host_port),
        "NetworkMode": network,
    }
    if not recipe.hardened:
        del host["CapDrop"]  # its supervisord switches users: the engine's default set
    return {
        "Image": recipe.image,
        "Cmd": list(command if command is not None else recipe.command),
        "Labels": {
            **(labels or {}),
            Label.DEPLOYMENT: deployment_id,
            Label.ROLE: "nosql",
            "faaslab.nosql": recipe.kind,
        },
        "ExposedPorts": {f"{NOSQL_PORT}/tcp": {}},
        # The recipe's test is a whole Docker ``Test`` (``CMD`` or ``CMD-SHELL``).
        "Healthcheck": {
            **healthcheck([], interval_s=10.0, start_period_s=60.0),
            "Test": list(recipe.health),
        },
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": [NOSQL_ALIAS]}}},
    }
