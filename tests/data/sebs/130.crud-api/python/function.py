"""faaslab's re-creation of SeBS's 130.crud-api function: a cart over SeBS's nosql helper."""

from . import nosql

client = nosql.nosql.get_instance()
TABLE = "shopping_cart"


def add_product(cart, product, name, price, quantity):
    client.insert(
        TABLE, ("cart_id", cart), ("product_id", product),
        {"name": name, "price": price, "quantity": quantity},
    )


def get_product(cart, product):
    return client.get(TABLE, ("cart_id", cart), ("product_id", product))


def list_cart(cart):
    items = client.query(TABLE, ("cart_id", cart), "product_id")
    cost = sum(item["price"] for item in items)
    count = sum(item["quantity"] for item in items)
    return {
        "products": [item["name"] for item in items],
        "total_cost": cost,
        "avg_price": cost / count if count else 0.0,
    }


def handler(event):
    results = []
    for request in event["requests"]:
        route, body = request["route"], request["body"]
        if route == "PUT /cart":
            add_product(
                body["cart"], body["product_id"], body["name"], body["price"], body["quantity"]
            )
            results.append({})
        elif route == "GET /cart/{id}":
            results.append(get_product(body["cart"], request["path"]["id"]))
        elif route == "GET /cart":
            results.append(list_cart(body["cart"]))
        else:
            raise RuntimeError(f"Unknown request route: {route}")
    return {"result": results}
