"""faaslab's re-creation of SeBS's 130.crud-api input: a shopping cart in a NoSQL table."""

import uuid

BENCHMARK = "130.crud-api"
TABLE = "shopping_cart"

#: What generate_input stores in the cart everybody reads: product id -> (name, price, quantity).
PRODUCTS = {
    "game-gothic": ("Gothic Game", 42, 2),
    "game-gothic-2": ("Gothic 2", 142, 3),
    "sebs-benchmark": ("SeBS Benchmark", 1000, 1),
    "mint-linux": ("Mint Linux", 0, 5),
}
WRITES = 5


def allocate_nosql():
    return {TABLE: {"primary_key": "cart_id", "secondary_key": "product_id"}}


def generate_input(
    data_dir, size, benchmarks_bucket, input_paths, output_paths, upload_func, nosql_upload
):
    cart = uuid.uuid4().hex
    for product, (name, price, quantity) in PRODUCTS.items():
        nosql_upload(
            BENCHMARK,
            TABLE,
            {"name": name, "price": price, "quantity": quantity},
            ("cart_id", cart),
            ("product_id", product),
        )
    if size == "test":
        one = {"route": "GET /cart/{id}", "path": {"id": "game-gothic"}, "body": {"cart": cart}}
        requests = [one]
    elif size == "small":
        requests = [{"route": "GET /cart", "body": {"cart": cart}}]
    else:
        fresh = uuid.uuid4().hex  # a cart of its own: reads see only this run's writes
        requests = []
        for i in range(WRITES):
            item = {"cart": fresh, "product_id": f"new-{i}", "name": f"Item {i}"}
            item.update(price=10 * i, quantity=i)
            requests.append({"route": "PUT /cart", "body": item})
            requests.append({"route": "GET /cart", "body": {"cart": fresh}})
    return {"requests": requests, "size": size}


def validate_output(data_dir, input_config, output, language, storage=None):
    results = output.get("result")
    requests = input_config["requests"]
    if not isinstance(results, list) or len(results) != len(requests):
        return f"expected {len(requests)} results, got {results!r:.200}"
    written = 0
    for request, result in zip(requests, results, strict=True):
        route = request["route"]
        if route == "PUT /cart":
            written += 1
            if result != {}:
                return f"PUT /cart answered {result!r}, not {{}}"
        elif route == "GET /cart/{id}":
            name, price, quantity = PRODUCTS[request["path"]["id"]]
            got = (result.get("name"), result.get("price"), result.get("quantity"))
            if got != (name, price, quantity):
                return f"GET /cart/{{id}} answered {got}, expected {(name, price, quantity)}"
        elif route == "GET /cart":
            expected = len(PRODUCTS) if input_config["size"] == "small" else written
            if len(result.get("products", [])) != expected:
                return f"GET /cart listed {result.get('products')}, expected {expected} products"
            if input_config["size"] == "small":
                total = sum(price for _, price, _ in PRODUCTS.values())
                if result.get("total_cost") != total:
                    return f"GET /cart's total_cost is {result.get('total_cost')}, not {total}"
    return None
