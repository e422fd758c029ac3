"""NoSQL without an engine: tables, names, environment, the codec, recipes, SeBS's helper.

A fake DynamoDB client (the calls the host client makes, in memory) stands
in for the server; everything else is the real code.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from faaslab._errors import SpecError, StorageError
from faaslab._sebs import NOSQL_REQUIREMENT, add_module_requirements, deployment_tables
from faaslab._sebs._benchmark import generate_inputs, load_benchmark
from faaslab._spec import DeploymentSpec, FunctionSpec, NoSQLSpec
from faaslab._state import DeploymentState
from faaslab._storage import (
    NOSQL_ALIAS,
    NOSQL_PORT,
    NoSQL,
    NoSQLTable,
    decode_value,
    encode_value,
    nosql_function_env,
    nosql_server_kind,
    parse_nosql_option,
    table_real_name,
)
from faaslab._storage._nosql_server import (
    dynalite_recipe,
    nosql_container_config,
    scylladb_recipe,
)

DATA = Path(__file__).parent.parent / "data" / "sebs"
CRUD = DATA / "130.crud-api"
HELPER = Path(__file__).parents[2] / "src" / "faaslab" / "runtimes" / "python" / "nosql.py"


def crud_copy(tmp_path: Path, input_py: str | None = None) -> Path:
    target = tmp_path / "130.crud-api"
    shutil.copytree(CRUD, target)
    if input_py is not None:
        (target / "input.py").write_text(input_py)
    return target


# -- allocate_nosql and the deployment's tables --------------------------------


def test_allocate_nosql_is_read_with_optional_secondary_keys(tmp_path: Path) -> None:
    loaded = load_benchmark(CRUD)
    assert loaded.nosql_tables == {"shopping_cart": ("cart_id", "product_id")}
    assert loaded.modules == {"nosql"}
    assert loaded.needs_nosql
    two = crud_copy(
        tmp_path,
        "def allocate_nosql():\n"
        "    return {'a': {'primary_key': 'p'}, 'b': {'primary_key': 'p', 'secondary_key': 's'}}\n",
    )
    assert load_benchmark(two).nosql_tables == {"a": ("p", None), "b": ("p", "s")}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def allocate_nosql():\n"
            "    return {'t': {'primary_key': 'a'}, 't': {'primary_key': 'b'}}\n",
            r"allocate_nosql\(\) declares table 't' twice",
        ),
        ("def allocate_nosql():\n    return [('t', {})]\n", "returned list, not a dict"),
        ("def allocate_nosql():\n    return {'t': {}}\n", "table 't' has no primary_key"),
        ("def allocate_nosql():\n    return {'t': 'k'}\n", "table 't' needs"),
        (
            "def allocate_nosql():\n    return {'t': {'primary_key': 'k', 'secondary_key': 'k'}}\n",
            "as both keys",
        ),
        ("def allocate_nosql():\n    raise ValueError('no')\n", "failed: ValueError: no"),
        ("def allocate_nosql():\n    return {'a=b': {'primary_key': 'k'}}\n", "not a table name"),
    ],
)
def test_bad_allocate_nosql_is_one_line(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        load_benchmark(crud_copy(tmp_path, source))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("130.crud-api: ")


def test_deployment_tables_are_named_per_deployment_and_benchmark() -> None:
    benchmark = load_benchmark(CRUD)
    (table,) = deployment_tables("d1", {"crud": benchmark})
    assert table == NoSQLTable(
        benchmark="130.crud-api",
        name="shopping_cart",
        real_name="faaslab-d1-130.crud-api-shopping_cart",
        primary_key="cart_id",
        secondary_key="product_id",
    )


def test_a_table_declared_by_two_functions_is_refused() -> None:
    benchmark = load_benchmark(CRUD)
    with pytest.raises(SpecError, match=r"'shopping_cart' .* declared twice, by functions a and b"):
        deployment_tables("d1", {"a": benchmark, "b": benchmark})


def test_table_names_follow_dynamodb_rules() -> None:
    assert table_real_name("x", "b", "t") == "faaslab-x-b-t"
    with pytest.raises(SpecError, match="DynamoDB refuses"):
        table_real_name("x", "b", "bad name")
    with pytest.raises(SpecError, match="DynamoDB refuses"):
        table_real_name("x", "b", "t" * 220)


# -- which server, the environment, the option -----------------------------------


def test_server_kind_follows_the_spec_and_the_need() -> None:
    assert nosql_server_kind(NoSQLSpec(), []) is None
    assert nosql_server_kind(NoSQLSpec(), ["crud"]) == "dynalite"
    assert nosql_server_kind(NoSQLSpec(kind="dynalite"), []) == "dynalite"
    assert nosql_server_kind(NoSQLSpec(kind="scylladb"), ["crud"]) == "scylladb"
    assert nosql_server_kind(NoSQLSpec(kind="none"), []) is None
    with pytest.raises(SpecError, match=r"^crud: needs NoSQL storage .* nosql is 'none'"):
        nosql_server_kind(NoSQLSpec(kind="none"), ["crud"])


def test_function_env_has_sebs_variables_and_sdk_keys() -> None:
    table = NoSQLTable(benchmark="b", name="cart", real_name="faaslab-x-b-cart", primary_key="k")
    env = nosql_function_env(f"{NOSQL_ALIAS}:{NOSQL_PORT}", "AK", "SK", [table])
    assert env == {
        "NOSQL_STORAGE_TYPE": "scylladb",
        "NOSQL_STORAGE_ENDPOINT": "nosql:8000",
        "NOSQL_STORAGE_TABLE_cart": "faaslab-x-b-cart",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def test_nosql_option_and_spec() -> None:
    assert parse_nosql_option(None).kind == "auto"
    assert parse_nosql_option("scylladb", keep=True) == NoSQLSpec(kind="scylladb", keep=True)
    with pytest.raises(SpecError, match="expected dynalite, scylladb, none or auto"):
        parse_nosql_option("mongodb")
    with pytest.raises(SpecError, match="took a function directory"):
        parse_nosql_option(str(CRUD))
    for bad in ({"kind": "redis"}, {"ready_timeout_s": 0}, {"memory_mb": 8}, {"cpus": 0}):
        with pytest.raises(SpecError, match="nosql"):
            NoSQLSpec(**bad)  # type: ignore[arg-type]
    spec = msgspec.json.decode(
        json.dumps({"functions": [{"name": "f", "code": str(CRUD)}], "nosql": {"kind": "none"}}),
        type=DeploymentSpec,
    )
    assert spec.nosql.kind == "none"
    assert DeploymentSpec(functions=[FunctionSpec(name="f", code=str(CRUD))]).nosql.kind == "auto"


def test_state_written_before_nosql_still_loads() -> None:
    old = {"id": "x", "status": "stopped", "created_at": 1.0}
    assert msgspec.convert(old, DeploymentState).nosql is None


# -- requirements ------------------------------------------------------------------


def test_boto3_is_added_for_the_nosql_module(tmp_path: Path) -> None:
    benchmark = load_benchmark(CRUD)
    package = tmp_path / "pkg"
    package.mkdir()
    requirements = add_module_requirements(package, benchmark)
    assert requirements == package / "requirements.txt"
    assert requirements.read_text() == NOSQL_REQUIREMENT + "\n"
    # Idempotent, and a benchmark's own pin wins.
    assert add_module_requirements(package, benchmark) == requirements
    assert requirements.read_text().count("boto3") == 1
    pinned = crud_copy(tmp_path)
    (pinned / "python" / "requirements.txt").write_text("boto3==1.34.0")
    own = load_benchmark(pinned)
    (package / "requirements.txt").write_text("boto3==1.34.0")
    assert add_module_requirements(package, own) is not None
    assert (package / "requirements.txt").read_text() == "boto3==1.34.0"


# -- the codec ---------------------------------------------------------------------


def test_codec_round_trips_plain_values() -> None:
    value = {
        "s": "x",
        "i": 42,
        "f": 0.5,
        "d": Decimal("3"),
        "b": True,
        "n": None,
        "raw": b"\x00",
        "l": [1, "a", [2]],
        "m": {"k": {"v": 1}},
        "ss": {"a", "b"},
        "ns": {1, 2},
    }
    encoded = encode_value(value)
    assert encoded["M"]["i"] == {"N": "42"}  # type: ignore[typeddict-item]
    assert encoded["M"]["b"] == {"BOOL": True}  # type: ignore[typeddict-item]
    decoded = decode_value(encoded)
    assert decoded == {**value, "d": 3}
    assert isinstance(decoded["i"], int)
    assert isinstance(decoded["f"], float)


@pytest.mark.parametrize("bad", [float("nan"), object(), set()])
def test_codec_refuses_what_dynamodb_cannot_hold(bad: Any) -> None:
    with pytest.raises(StorageError, match="nosql"):
        encode_value(bad)


# -- the container -----------------------------------------------------------------


def test_container_is_limited_checked_and_on_loopback() -> None:
    recipe = dynalite_recipe(NoSQLSpec(memory_mb=300, cpus=0.5))
    config = nosql_container_config(recipe, deployment_id="d", network="net", volume="vol")
    host = config["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 300 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["CapDrop"] == ["ALL"]
    assert host["ReadonlyRootfs"] is True
    assert host["Binds"] == ["vol:/data"]
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert config["Labels"]["faaslab.role"] == "nosql"
    assert config["Labels"]["faaslab.deployment"] == "d"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["NetworkingConfig"]["EndpointsConfig"]["net"]["Aliases"] == ["nosql"]
    assert config["Cmd"] == ["--port", "8000", "--path", "/data"]
    scylla = scylladb_recipe(NoSQLSpec())
    assert "--alternator-port" in scylla.command
    assert scylla.memory_mb == 1024
    scylla_config = nosql_container_config(scylla, deployment_id="d", network="n", volume="v")
    assert scylla_config["HostConfig"]["Binds"] == ["v:/var/lib/scylla"]


# -- nosql_upload through the NoSQL store, on a fake client ------------------------


class FakeDynamoDB:
    """The calls the host client makes, in memory."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    async def put_item(self, *, TableName: str, Item: dict[str, Any]) -> dict[str, Any]:
        self.items.append((TableName, Item))
        return {}


def fake_store(tables: list[NoSQLTable]) -> tuple[NoSQL, FakeDynamoDB]:
    fake = FakeDynamoDB()
    store = NoSQL(
        fake,  # type: ignore[arg-type]
        recipe=dynalite_recipe(NoSQLSpec()),
        endpoint="127.0.0.1:1",
        access_key="a",
        secret_key="s",
        container_id="c",
        volume="v",
        keep=False,
    )
    store.tables.extend(tables)
    return store, fake


@pytest.mark.anyio
async def test_generate_input_fills_the_declared_tables() -> None:
    benchmark = load_benchmark(CRUD)
    tables = deployment_tables("d1", {"crud": benchmark})
    store, fake = fake_store(tables)
    event = await generate_inputs(benchmark, None, nosql=store, size="test")
    assert event["requests"][0]["route"] == "GET /cart/{id}"
    assert len(fake.items) == 4
    table, item = fake.items[0]
    assert table == "faaslab-d1-130.crud-api-shopping_cart"
    assert item["name"] == {"S": "Gothic Game"}
    assert item["price"] == {"N": "42"}
    assert set(item) == {"name", "price", "quantity", "cart_id", "product_id"}
    assert store.describe()["tables"] == {"130.crud-api": {"shopping_cart": table}}
    assert store.function_env("130.crud-api")["NOSQL_STORAGE_TABLE_shopping_cart"] == table


@pytest.mark.anyio
async def test_nosql_upload_to_an_undeclared_table_is_refused(tmp_path: Path) -> None:
    source = (CRUD / "input.py").read_text().replace('TABLE = "shopping_cart"', 'TABLE = "other"')
    source = source.replace("return {TABLE:", 'return {"shopping_cart":')
    benchmark = load_benchmark(crud_copy(tmp_path, source))
    store, _ = fake_store(deployment_tables("d1", {"crud": benchmark}))
    with pytest.raises(StorageError, match="writes to table 'other', which its allocate_nosql"):
        await generate_inputs(benchmark, None, nosql=store, size="test")
    with pytest.raises(SpecError, match="has no NoSQL storage"):
        await generate_inputs(load_benchmark(CRUD), None, nosql=None, size="test")


# -- SeBS's helper in the function container ----------------------------------------


class FakeTable:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.pages: list[dict[str, Any]] = []

    def put_item(self, **request: Any) -> None:
        self.calls.append(("put_item", request))

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("get_item", request))
        return {"Item": {"price": Decimal("42"), "avg": Decimal("0.5")}} if self.pages else {}

    def update_item(self, **request: Any) -> None:
        self.calls.append(("update_item", request))

    def query(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("query", dict(request)))
        return self.pages.pop(0)


class FakeResource:
    def __init__(self) -> None:
        self.table = FakeTable()
        self.names: list[str] = []

    def Table(self, name: str) -> FakeTable:
        self.names.append(name)
        return self.table


def load_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("faaslab_test_nosql_helper", HELPER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_sebs_helper_keeps_sebs_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    helper = load_helper()
    monkeypatch.setenv("NOSQL_STORAGE_TABLE_cart", "real-cart")
    resource = FakeResource()
    db = helper.nosql(resource)
    data = {"price": 0.5}
    db.insert("cart", ("cart_id", "c"), ("product_id", "p"), data)
    assert data == {"price": 0.5, "cart_id": "c", "product_id": "p"}  # as SeBS: keys into data
    assert resource.table.calls[0][1]["Item"]["price"] == Decimal("0.5")
    assert resource.names == ["real-cart"]
    db.update("cart", ("cart_id", "c"), ("product_id", "p"), {"status": "x", "name": "y"})
    update = resource.table.calls[-1][1]
    assert update["UpdateExpression"] == "SET #a0 = :v0, #a1 = :v1"
    assert update["ExpressionAttributeNames"] == {"#a0": "status", "#a1": "name"}
    with pytest.raises(KeyError, match="no item"):
        db.get("cart", ("cart_id", "c"), ("product_id", "p"))
    resource.table.pages = [
        {"Items": [{"n": Decimal("1")}], "LastEvaluatedKey": {"k": "1"}},
        {"Items": [{"n": Decimal("2.5")}]},
    ]
    assert db.query("cart", ("cart_id", "c"), "product_id") == [{"n": 1}, {"n": 2.5}]
    assert resource.table.calls[-1][1]["ExclusiveStartKey"] == {"k": "1"}
    with pytest.raises(RuntimeError, match="NOSQL_STORAGE_TABLE_missing"):
        db.get("missing", ("k", "v"), None)


def test_sebs_helper_checks_its_environment() -> None:
    helper = load_helper()
    with pytest.raises(RuntimeError, match="Unsupported NoSQL storage type: mongodb!"):
        helper.nosql.client_from_env({"NOSQL_STORAGE_TYPE": "mongodb"})
    with pytest.raises(RuntimeError, match="NOSQL_STORAGE_ENDPOINT not set"):
        helper.nosql.client_from_env({"NOSQL_STORAGE_TYPE": "scylladb"})
    assert helper.nosql.get_instance() is helper.nosql.get_instance()
