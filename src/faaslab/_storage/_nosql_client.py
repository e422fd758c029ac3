"""The host-side NoSQL client: the DynamoDB API over aiobotocore, with plain Python values.

Items go in and come out as plain data: strings, numbers (``int`` when
integral, else ``float``, as SeBS's wrappers return them), booleans, None,
bytes, lists, dicts and sets; the codec to DynamoDB's typed attribute values
is :func:`encode_value` / :func:`decode_value`. Every server error becomes a
:class:`StorageError` naming the operation, the table and DynamoDB's error
code. Table arguments take the real name or, when it is unambiguous, the name
a function uses (``shopping_cart``).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from .._errors import StorageError
from ._nosql_server import REGION, NoSQLTable

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ("NoSQLClient", "decode_value", "encode_value", "open_dynamodb")

#: Bound on waiting for a created table to become ACTIVE.
TABLE_ACTIVE_S = 30.0


# -- the codec ----------------------------------------------------------------


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise StorageError(f"nosql: {value} cannot be stored (DynamoDB numbers are finite)")
    return str(value)


def encode_value(value: Any) -> AttributeValueTypeDef:
    """A Python value as a DynamoDB attribute value (``{"S": ...}``, ``{"N": ...}``, ...)."""
    if isinstance(value, bool):  # before int: True is an int
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): encode_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [encode_value(v) for v in value]}
    if isinstance(value, set | frozenset) and value:
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
            return {"NS": sorted(_number(v) for v in value)}
        if all(isinstance(v, bytes) for v in value):
            return {"BS": sorted(value)}
    raise StorageError(f"nosql: cannot store a {type(value).__name__} ({value!r:.60})")


def _decode_number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def decode_value(value: Mapping[str, Any]) -> Any:
    """The Python value of a DynamoDB attribute value."""
    ((kind, data),) = value.items()
    match kind:
        case "S" | "B" | "BOOL":
            return data
        case "NULL":
            return None
        case "N":
            return _decode_number(data)
        case "M":
            return {k: decode_value(v) for k, v in data.items()}
        case "L":
            return [decode_value(v) for v in data]
        case "SS" | "BS":
            return set(data)
        case "NS":
            return {_decode_number(v) for v in data}
    raise StorageError(f"nosql: unknown attribute type {kind!r}")


def _encode_item(item: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {str(k): encode_value(v) for k, v in item.items()}


def _decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: decode_value(v) for k, v in item.items()}


# -- the client ---------------------------------------------------------------


@asynccontextmanager
async def open_dynamodb(
    endpoint: str, access_key: str, secret_key: str, *, timeout_s: float = 10.0
) -> AsyncIterator[DynamoDBClient]:
    """An aiobotocore DynamoDB client for ``http://<endpoint>`` (host:port)."""
    config = AioConfig(
        connect_timeout=min(timeout_s, 5.0),
        read_timeout=timeout_s,
        # One attempt: the readiness loop and the callers decide about retrying.
        retries={"max_attempts": 1, "mode": "standard"},
    )
    session = get_session()
    async with session.create_client(
        "dynamodb",
        endpoint_url=f"http://{endpoint}",
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    ) as client:
        yield client


class NoSQLClient:
    """Tables and items of a DynamoDB-API server, from the host.

    ``tables`` are the tables the deployment created (see :class:`NoSQLTable`).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        tables: list[NoSQLTable] | None = None,
    ) -> None:
        self._client = client
        self.endpoint = endpoint
        self.access_key = access_key
        self.secret_key = secret_key
        self.tables: list[NoSQLTable] = list(tables or [])

    def real_name(self, table: str) -> str:
        """The server's name for ``table``: itself, or the real name of a function's table."""
        if any(t.real_name == table for t in self.tables):
            return table
        matches = [t.real_name for t in self.tables if t.name == table]
        if len(matches) > 1:
            raise StorageError(
                f"nosql: {table!r} names tables of several benchmarks ({', '.join(matches)}): "
                "give the real name"
            )
        return matches[0] if matches else table

    async def _call(self, operation: str, table: str | None, **request: Any) -> dict[str, Any]:
        try:
            response = await getattr(self._client, operation)(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            where = f" on {table}" if table else ""
            raise StorageError(
                f"nosql {operation}{where}: {error.get('Code', '?')}: {error.get('Message', exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"nosql {operation} at {self.endpoint}: {exc}") from exc
        return cast("dict[str, Any]", response)

    async def check(self) -> None:
        """One signed call (``ListTables``): raises StorageError unless the server answers."""
        await self._call("list_tables", None, Limit=1)

    async def list_tables(self) -> list[str]:
        """Every table on the server, all pages."""
        names: list[str] = []
        request: dict[str, Any] = {}
        while True:
            page = await self._call("list_tables", None, **request)
            names.extend(page.get("TableNames", []))
            if "LastEvaluatedTableName" not in page:
                return names
            request = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}

    async def create_table(
        self, name: str, primary_key: str, secondary_key: str | None = None
    ) -> None:
        """Create a table keyed by strings (as SeBS does), pay per request; wait until ACTIVE."""
        definitions = [{"AttributeName": primary_key, "AttributeType": "S"}]
        schema = [{"AttributeName": primary_key, "KeyType": "HASH"}]
        if secondary_key is not None:
            definitions.append({"AttributeName": secondary_key, "AttributeType": "S"})
            schema.append({"AttributeName": secondary_key, "KeyType": "RANGE"})
        created = await self._call(
            "create_table",
            name,
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=definitions,
            KeySchema=schema,
        )
        status = created["TableDescription"].get("TableStatus")
        deadline = time.monotonic() + TABLE_ACTIVE_S
        delay = 0.02
        while status != "ACTIVE":
            if time.monotonic() > deadline:
                raise StorageError(
                    f"nosql: table {name} is still {status} after {TABLE_ACTIVE_S:g} s"
                )
            # The API has no notification of a table's state: poll, bounded.
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.5)
            described = await self._call("describe_table", name, TableName=name)
            status = described["Table"].get("TableStatus")

    async def put(self, table: str, item: Mapping[str, Any]) -> None:
        name = self.real_name(table)
        await self._call("put_item", name, TableName=name, Item=_encode_item(item))

    async def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item with ``key`` (all key attributes), or None."""
        name = self.real_name(table)
        found = await self._call(
            "get_item", name, TableName=name, Key=_encode_item(key), ConsistentRead=True
        )
        item = found.get("Item")
        return _decode_item(item) if item is not None else None

    async def delete(self, table: str, key: Mapping[str, Any]) -> None:
        name = self.real_name(table)
        await self._call("delete_item", name, TableName=name, Key=_encode_item(key))

    async def query(self, table: str, key_name: str, value: Any) -> list[dict[str, Any]]:
        """Every item whose partition key ``key_name`` is ``value``, in sort-key order."""
        name = self.real_name(table)
        return await self._pages(
            "query",
            name,
            TableName=name,
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": key_name},
            ExpressionAttributeValues={":v": encode_value(value)},
        )

    async def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of the table."""
        name = self.real_name(table)
        return await self._pages("scan", name, TableName=name)

    async def _pages(self, operation: str, table: str, **request: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self._call(operation, table, **request)
            items.extend(_decode_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:  # a page ends at 1 MB of data
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
