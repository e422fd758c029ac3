"""NoSQL for real: the dynalite container, its tables, SeBS's nosql helper in a function.

The benchmark is tests/data/sebs/130.crud-api, faaslab's re-creation of SeBS's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from faaslab._backend import Backend, Label
from faaslab._deployment._open import open_deployment
from faaslab._errors import SpecError, StorageError
from faaslab._sebs import validate
from faaslab._spec import DeploymentSpec, FunctionSpec, NoSQLSpec, StorageSpec
from faaslab._storage import NoSQLTable, open_nosql
from faaslab._storage._nosql_client import NoSQLClient, open_dynamodb

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

Leftovers = Callable[[str], Awaitable[list[str]]]
CRUD = Path(__file__).parent.parent / "data" / "sebs" / "130.crud-api"


@pytest.fixture
async def network(engine: Backend, deployment_id: str, nothing_left: None) -> AsyncIterator[str]:
    """The deployment's network (removed before ``nothing_left`` looks)."""
    name = f"faaslab-{deployment_id}"
    network_id = await engine.create_network(name, {Label.DEPLOYMENT: deployment_id})
    try:
        yield name
    finally:
        await engine.remove_network(network_id)


def crud_spec(deployment_id: str, **fields: object) -> DeploymentSpec:
    functions = fields.pop("functions", None) or [FunctionSpec(name="crud", code=str(CRUD))]
    return DeploymentSpec(
        deployment_id=deployment_id,
        functions=functions,  # type: ignore[arg-type]
        storage=StorageSpec(kind="none"),  # 130 uses no object storage
        **fields,  # type: ignore[arg-type]
    )


async def test_crud_benchmark_reads_and_writes_through_sebs_helper(
    deployment_id: str, nothing_left: None
) -> None:
    async with open_deployment(crud_spec(deployment_id)) as dep:
        nosql = dep.nosql
        assert nosql is not None
        assert nosql.kind == "dynalite"
        real = f"faaslab-{deployment_id}-130.crud-api-shopping_cart"
        assert real in await nosql.list_tables()
        # Filled by input.py's nosql_upload at start.
        stored = await nosql.scan("shopping_cart")
        assert sorted(item["product_id"] for item in stored) == [
            "game-gothic", "game-gothic-2", "mint-linux", "sebs-benchmark",
        ]  # fmt: skip
        cart = stored[0]["cart_id"]

        # The function reads through `from . import nosql` (boto3, added for the module).
        event = dep.inputs[0]
        result = await dep.invoke("crud", event)
        assert result.output["result"][0]["name"] == "Gothic Game"
        assert (await validate(dep.benchmarks["crud"], event, result.output, None)).ok

        # ...and writes: PUT then GET of the cart, seen by the host client too.
        put = {"cart": cart, "product_id": "new", "name": "New", "price": 7, "quantity": 1}
        listing = await dep.invoke(
            "crud",
            {"requests": [
                {"route": "PUT /cart", "body": put},
                {"route": "GET /cart", "body": {"cart": cart}},
            ]},
        )  # fmt: skip
        assert listing.output["result"][1]["total_cost"] == 42 + 142 + 1000 + 0 + 7
        item = await nosql.get("shopping_cart", {"cart_id": cart, "product_id": "new"})
        assert item == {**{k: v for k, v in put.items() if k != "cart"}, "cart_id": cart}
        assert len(await nosql.query(real, "cart_id", cart)) == 5

        # The host client: put, get, delete on the real name.
        await nosql.put(real, {"cart_id": "h", "product_id": "p", "tags": {"a"}, "n": 1.5})
        assert await nosql.get(real, {"cart_id": "h", "product_id": "p"}) == {
            "cart_id": "h", "product_id": "p", "tags": {"a"}, "n": 1.5,
        }  # fmt: skip
        await nosql.delete(real, {"cart_id": "h", "product_id": "p"})
        assert await nosql.get(real, {"cart_id": "h", "product_id": "p"}) is None
        with pytest.raises(StorageError, match=r"^nosql put_item on .*: ValidationException"):
            await nosql.put(real, {"cart_id": "only the hash key"})

        entry = json.loads(json.dumps(dep.state().nosql))
        assert entry["type"] == "scylladb"
        assert entry["kind"] == "dynalite"
        assert entry["tables"] == {"130.crud-api": {"shopping_cart": real}}
        assert entry["function_endpoint"] == "nosql:8000"
        container = await dep.engine.inspect_container(nosql.container_id)
        assert container is not None
        host = container["HostConfig"]
        assert host["Memory"] == 256 * 1024 * 1024
        assert host["ReadonlyRootfs"]
        assert container["Config"]["Healthcheck"]["Test"][0] == "CMD"


async def test_unsigned_requests_are_refused_but_keys_are_not_checked(
    engine: Backend, deployment_id: str, network: str
) -> None:
    table = NoSQLTable(benchmark="b", name="t", real_name="faaslab-t-b-t", primary_key="k")
    async with open_nosql(
        engine, NoSQLSpec(), "dynalite", deployment_id=deployment_id, network=network,
        tables=[table],
    ) as nosql:  # fmt: skip
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"http://{nosql.endpoint}/",
                data="{}",
                headers={
                    "X-Amz-Target": "DynamoDB_20120810.ListTables",
                    "Content-Type": "application/x-amz-json-1.0",
                },
            )
            body = await response.json(content_type=None)
        assert response.status == 400
        assert body["__type"].endswith("MissingAuthenticationTokenException")
        # What SeBS's wrappers send (the literal key "None") must work: dynalite
        # takes any signed request, so the deployment's keys are handed out, not enforced.
        async with open_dynamodb(nosql.endpoint, "None", "None") as client:
            other = NoSQLClient(client, endpoint=nosql.endpoint, access_key="None", secret_key="x")
            assert await other.list_tables() == ["faaslab-t-b-t"]
        assert nosql.describe()["credentials_enforced"] is False


@pytest.mark.parametrize(
    ("command", "message"),
    [
        # Listening elsewhere: the probe never gets an answer.
        (["--port", "8001"], r"^the NoSQL server \(dynalite\) did not answer a DynamoDB"),
        # A port out of range: the server exits at once.
        (["--port=99999"], r"^the NoSQL server \(dynalite\) exited with code \d+ before it"),
    ],
)
async def test_server_that_never_becomes_ready_leaves_nothing(
    engine: Backend, deployment_id: str, network: str, command: list[str], message: str
) -> None:
    with pytest.raises(StorageError, match=message) as caught:
        async with open_nosql(
            engine, NoSQLSpec(ready_timeout_s=2), "dynalite", deployment_id=deployment_id,
            network=network, command=command,
        ):  # fmt: skip
            pytest.fail("the server was ready")
    first_line = str(caught.value).splitlines()[0]
    assert "NoSQL server (dynalite)" in first_line
    # `network` and `nothing_left` check that no container or volume is left.


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "functions": [
                    FunctionSpec(name="a", code=str(CRUD)),
                    FunctionSpec(name="b", code=str(CRUD)),
                ]
            },
            r"table 'shopping_cart' of benchmark 130.crud-api is declared twice",
        ),
        ({"nosql": NoSQLSpec(kind="none")}, r"^crud: needs NoSQL storage"),
    ],
)
async def test_refused_before_anything_starts(
    deployment_id: str, leftovers_of: Leftovers, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        async with open_deployment(crud_spec(deployment_id, **fields)):
            pytest.fail("the deployment started")
    assert "\n" not in str(caught.value)
    assert await leftovers_of(deployment_id) == []
