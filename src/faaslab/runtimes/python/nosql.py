"""SeBS-compatible NoSQL helper for functions (``from . import nosql``).

Same class name, method names, arguments and results as SeBS's local helper
(``benchmarks/wrappers/local/python/nosql.py``), so benchmark functions such
as 130.crud-api run unchanged. Keys are ``(attribute name, value)`` pairs::

    db = nosql.nosql.get_instance()
    db.insert("shopping_cart", ("cart_id", c), ("product_id", p), {"price": 3})
    db.get("shopping_cart", ("cart_id", c), ("product_id", p))   # -> {..., "price": 3}
    db.update("shopping_cart", ("cart_id", c), ("product_id", p), {"price": 4})
    db.query("shopping_cart", ("cart_id", c), "product_id")     # -> [item, ...]
    db.delete("shopping_cart", ("cart_id", c), ("product_id", p))

``insert`` stores ``data`` plus both key attributes (into ``data``, as SeBS
does); ``get`` returns the item (a ``KeyError`` when there is none, as in
SeBS); ``update`` SETs each given attribute; ``query`` returns every item
with that partition key (all pages). Numbers come back as ``int`` when
integral, else ``float``. The secondary key may be None for tables without one.

Environment, as faaslab sets it: ``NOSQL_STORAGE_TYPE`` (``scylladb``),
``NOSQL_STORAGE_ENDPOINT`` (host:port, plain HTTP),
``NOSQL_STORAGE_TABLE_<name>`` (the real table behind a name), and the keys
in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_DEFAULT_REGION``
(SeBS's helper signs with the literal ``None``; the servers accept both).
``boto3`` is imported, and the variables read, only on first use, so
``get_instance()`` at a function's top level never fails.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

Key = tuple[str, Any]


def _plain(value: Any) -> Any:
    """boto3's Decimals as int or float, recursively (SeBS's ``_remove_decimals``)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _stored(value: Any) -> Any:
    """floats as Decimals, recursively: boto3's serializer refuses floats."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list | tuple):
        return [_stored(v) for v in value]
    if isinstance(value, dict):
        return {k: _stored(v) for k, v in value.items()}
    return value


class nosql:  # lower-case: SeBS's name, which functions import
    """A thin wrapper over one boto3 DynamoDB resource (``self.client``, as in SeBS)."""

    instance: nosql | None = None
    _lock = threading.Lock()

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._tables: dict[str, Any] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.client_from_env()
        return self._client

    @staticmethod
    def client_from_env(environ: Mapping[str, str] = os.environ) -> Any:
        storage_type = environ.get("NOSQL_STORAGE_TYPE")
        if storage_type and storage_type != "scylladb":
            raise RuntimeError(f"Unsupported NoSQL storage type: {storage_type}!")
        endpoint = environ.get("NOSQL_STORAGE_ENDPOINT")
        if not endpoint:
            raise RuntimeError(
                "nosql is not configured: NOSQL_STORAGE_ENDPOINT not set in the environment"
            )
        import boto3  # here, not at the top: see the module docstring

        return boto3.resource(
            "dynamodb",
            endpoint_url=f"http://{endpoint}",
            region_name=environ.get("AWS_DEFAULT_REGION") or "None",
            aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID") or "None",
            aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY") or "None",
        )

    @staticmethod
    def get_instance() -> nosql:
        """The process-wide helper, built on first use."""
        with nosql._lock:  # a function may call this from several threads
            if nosql.instance is None:
                nosql.instance = nosql()
            return nosql.instance

    def _get_table(self, table_name: str) -> Any:
        """The boto3 Table behind ``table_name`` (from ``NOSQL_STORAGE_TABLE_<table_name>``)."""
        if table_name not in self._tables:
            env_name = f"NOSQL_STORAGE_TABLE_{table_name}"
            real = os.environ.get(env_name)
            if not real:
                raise RuntimeError(
                    f"Couldn't find an environment variable {env_name} for table {table_name}"
                )
            self._tables[table_name] = self.client.Table(real)
        return self._tables[table_name]

    @staticmethod
    def _key(primary_key: Key, secondary_key: Key | None) -> dict[str, Any]:
        key = {primary_key[0]: primary_key[1]}
        if secondary_key is not None:
            key[secondary_key[0]] = secondary_key[1]
        return key

    def insert(
        self, table_name: str, primary_key: Key, secondary_key: Key | None, data: dict[str, Any]
    ) -> None:
        data.update(self._key(primary_key, secondary_key))
        self._get_table(table_name).put_item(Item=_stored(data))

    def get(self, table_name: str, primary_key: Key, secondary_key: Key | None) -> dict[str, Any]:
        key = self._key(primary_key, secondary_key)
        found = self._get_table(table_name).get_item(Key=key)
        if "Item" not in found:
            raise KeyError(f"no item with key {key} in table {table_name}")
        return _plain(found["Item"])  # type: ignore[no-any-return]

    def update(
        self,
        table_name: str,
        primary_key: Key,
        secondary_key: Key | None,
        updates: dict[str, Any],
    ) -> None:
        if not updates:
            return  # "SET" with nothing after it is a syntax error
        # Numbered placeholders: attribute names may be reserved words (status,
        # name) or hold characters a placeholder may not.
        names = {f"#a{i}": name for i, name in enumerate(updates)}
        values = {f":v{i}": _stored(value) for i, value in enumerate(updates.values())}
        expression = ", ".join(f"#a{i} = :v{i}" for i in range(len(updates)))
        self._get_table(table_name).update_item(
            Key=self._key(primary_key, secondary_key),
            UpdateExpression=f"SET {expression}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def query(
        self, table_name: str, primary_key: Key, _: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item whose partition key is ``primary_key`` (the sort key's name: unused, SeBS)."""
        table = self._get_table(table_name)
        request: dict[str, Any] = {
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": primary_key[0]},
            "ExpressionAttributeValues": {":k": primary_key[1]},
        }
        items: list[dict[str, Any]] = []
        while True:
            page = table.query(**request)
            items.extend(_plain(page["Items"]))
            if "LastEvaluatedKey" not in page:  # a page ends at 1 MB of data
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, table_name: str, primary_key: Key, secondary_key: Key | None) -> None:
        self._get_table(table_name).delete_item(Key=self._key(primary_key, secondary_key))
