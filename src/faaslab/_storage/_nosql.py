"""The NoSQL actor: ``open_nosql`` starts a DynamoDB-API server and its tables, yields NoSQL.

As the object store: a data volume and a server container (labels, a
loopback-only port, memory and CPU limits, a health check) on the
deployment network under the alias ``nosql``; fresh keys per deployment;
ready when a signed ``ListTables`` succeeds, bounded, while an early exit is
watched for. Then every table is created (concurrently) and waited for until
ACTIVE. Leaving the block for any reason removes the container, and the
volume unless ``keep``, under a shielded, bounded scope.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from .._backend import Backend, Label
from .._errors import StorageError
from .._spec import NoSQLSpec
from .._util import first_error
from ._container import pull_if_missing, run_server, wait_server_ready
from ._nosql_client import NoSQLClient, open_dynamodb
from ._nosql_server import (
    NOSQL_ALIAS,
    NOSQL_PORT,
    REGION,
    SCYLLADB_IMAGE,
    NoSQLRecipe,
    NoSQLTable,
    dynalite_recipe,
    nosql_container_config,
    nosql_function_env,
    scylladb_recipe,
)

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

__all__ = ("NoSQL", "open_nosql")

log = structlog.get_logger()

Progress = Callable[[str], None]

PULL_BOUND_S = 600.0


class NoSQL(NoSQLClient):
    """A deployment's NoSQL store: where it is, its keys, its tables, and the host-side client.

    ``endpoint`` is what the host uses (``127.0.0.1:PORT``), ``function_endpoint``
    what functions use (``nosql:8000`` on the deployment network).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        recipe: NoSQLRecipe,
        endpoint: str,
        access_key: str,
        secret_key: str,
        container_id: str,
        volume: str,
        keep: bool,
        recreate: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        super().__init__(client, endpoint=endpoint, access_key=access_key, secret_key=secret_key)
        # Creates and starts the server container again on its host port,
        # waits until it is ready, returns its id: how recover() brings it back.
        self._recreate = recreate
        self.kind = recipe.kind
        self.version = recipe.version
        self.memory_mb = recipe.memory_mb
        self.cpus = recipe.cpus
        self.container_id = container_id
        self.volume = volume
        self.keep = keep
        self.function_endpoint = f"{NOSQL_ALIAS}:{NOSQL_PORT}"

    @property
    def host_port(self) -> int:
        return int(self.endpoint.rpartition(":")[2])

    async def recover(self) -> None:
        """Bring the server back after its engine lost it: same volume, keys, host port.

        dynalite keeps its tables in the volume (``--path``), so they and
        their items are there again; a taken host port fails the recovery
        (an EngineError), as for the object store.
        """
        if self._recreate is None:
            return
        self.container_id = await self._recreate()
        log.info("nosql.recovered", kind=self.kind, port=self.host_port)

    def tables_of(self, benchmark: str) -> list[NoSQLTable]:
        return [table for table in self.tables if table.benchmark == benchmark]

    def function_env(self, benchmark: str | None = None) -> dict[str, str]:
        """``NOSQL_STORAGE_*`` (and SDK keys) for a function; tables of its benchmark only."""
        tables = self.tables_of(benchmark) if benchmark is not None else []
        return nosql_function_env(self.function_endpoint, self.access_key, self.secret_key, tables)

    async def create_tables(self, tables: list[NoSQLTable]) -> None:
        """Create ``tables`` concurrently (each waited for until ACTIVE) and remember them."""
        try:
            async with anyio.create_task_group() as tg:
                for table in tables:
                    tg.start_soon(
                        self.create_table, table.real_name, table.primary_key, table.secondary_key
                    )
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        self.tables.extend(tables)

    async def write_to_table(
        self,
        benchmark: str,
        table: str,
        data: Mapping[str, Any],
        primary_key: tuple[str, Any],
        secondary_key: tuple[str, Any] | None = None,
    ) -> None:
        """SeBS's ``nosql_upload``: ``data`` plus its key attributes into a benchmark's table."""
        declared = self.tables_of(benchmark)
        found = next((t for t in declared if t.name == table), None)
        if found is None:
            known = ", ".join(t.name for t in declared) or "none"
            raise StorageError(
                f"{benchmark}: input.py writes to table {table!r}, which its allocate_nosql() "
                f"does not declare (declared: {known})"
            )
        item = dict(data)
        for key in (primary_key, secondary_key):
            if key is not None:
                item[key[0]] = key[1]
        await self.put(found.real_name, item)

    def describe(self) -> dict[str, Any]:
        """The deployment file's ``nosql`` entry.

        Keys after SeBS's ``ScyllaDBConfig`` (``address``, ``mapped_port``,
        ``alternator_port``, keys, ``instance_id``, ``region``, ``cpus``,
        ``memory``, ``version``, ``data_volume``) with ``type`` what functions
        see in ``NOSQL_STORAGE_TYPE``; faaslab's own beside them.
        """
        tables: dict[str, dict[str, str]] = {}
        for table in self.tables:
            tables.setdefault(table.benchmark, {})[table.name] = table.real_name
        return {
            "type": "scylladb",
            "address": self.endpoint,
            "mapped_port": self.host_port,
            "alternator_port": NOSQL_PORT,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "instance_id": self.container_id,
            "region": REGION,
            "cpus": self.cpus,
            "memory": self.memory_mb,
            "version": self.version,
            "data_volume": self.volume,
            # faaslab's own, beside SeBS's
            "kind": self.kind,
            "function_endpoint": self.function_endpoint,
            "tables": tables,
            "keep_data": self.keep,
            # dynalite and Alternator (as SeBS runs it) accept any key.
            "credentials_enforced": False,
        }


@asynccontextmanager
async def open_nosql(
    engine: Backend,
    spec: NoSQLSpec,
    kind: str,
    *,
    deployment_id: str,
    network: str,
    tables: list[NoSQLTable] | None = None,
    progress: Progress | None = None,
    command: list[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> AsyncIterator[NoSQL]:
    """Start the deployment's NoSQL server of ``kind`` (dynalite, scylladb), create ``tables``.

    ``network`` must exist: the server joins it with the alias ``nosql``.
    ``command`` replaces the server's arguments (debugging, tests). ``labels``
    (the deployment's owner and state file) go on the container and volume.
    """
    say = progress or (lambda _: None)
    recipe = (scylladb_recipe if kind == "scylladb" else dynalite_recipe)(spec)
    if recipe.image == SCYLLADB_IMAGE:
        await pull_if_missing(
            engine,
            SCYLLADB_IMAGE,
            say,
            what="nosql kind 'scylladb'",
            instead="use --nosql dynalite (built offline by `python -m faaslab images build`)",
            bound_s=PULL_BOUND_S,
        )
    else:
        await engine.require_image(recipe.image)
    access_key, secret_key = secrets.token_hex(10), secrets.token_hex(20)
    name = f"faaslab-{deployment_id}-nosql"
    labels = {**(labels or {}), Label.DEPLOYMENT: deployment_id, Label.ROLE: "nosql"}
    started = time.monotonic()
    say(f"starting nosql ({recipe.kind} {recipe.version})")

    def config(host_port: int | None) -> dict[str, Any]:
        return nosql_container_config(
            recipe, deployment_id=deployment_id, network=network, volume=name,
            command=command, host_port=host_port, labels=labels,
        )  # fmt: skip

    async def wait_ready(nosql: NoSQL, instance_id: str) -> None:
        await wait_server_ready(
            engine,
            instance_id,
            nosql.check,
            server=f"the NoSQL server ({recipe.kind})",
            call="a DynamoDB ListTables call",
            logs_label="nosql",
            timeout_s=spec.ready_timeout_s,
        )

    async with (
        run_server(
            engine, name=name, alias=NOSQL_ALIAS, network=network, labels=labels,
            config=config, port=NOSQL_PORT, keep=spec.keep,
            ready_timeout_s=spec.ready_timeout_s, what="nosql",
        ) as server,
        open_dynamodb(server.endpoint, access_key, secret_key) as client,
    ):  # fmt: skip

        async def recreate() -> str:
            await server.recreate()
            await wait_ready(nosql, server.instance_id)
            return server.container_id

        nosql = NoSQL(
            client,
            recipe=recipe,
            endpoint=server.endpoint,
            access_key=access_key,
            secret_key=secret_key,
            container_id=server.container_id,
            volume=name,
            keep=spec.keep,
            recreate=recreate,
        )
        await wait_ready(nosql, server.instance_id)
        await nosql.create_tables(tables or [])
        elapsed = time.monotonic() - started
        log.info(
            "nosql.ready",
            deployment=deployment_id,
            kind=recipe.kind,
            endpoint=nosql.endpoint,
            tables=len(nosql.tables),
            start_s=round(elapsed, 3),
        )
        say(f"nosql ready at {nosql.endpoint} in {elapsed:.1f} s ({len(nosql.tables)} tables)")
        yield nosql
