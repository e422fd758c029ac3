// faaslab's re-creation of SeBS's 130.crud-api in Node.js (not SeBS's file):
// a cart over SeBS's nosql helper, the same routes as python/function.py.
const nosql = require('./nosql');

const client = nosql.nosql.get_instance();
const TABLE = 'shopping_cart';

async function addProduct(cart, product, name, price, quantity) {
  await client.insert(TABLE, ['cart_id', cart], ['product_id', product], {
    name: name,
    price: price,
    quantity: quantity,
  });
}

async function getProduct(cart, product) {
  return client.get(TABLE, ['cart_id', cart], ['product_id', product]);
}

async function listCart(cart) {
  const items = await client.query(TABLE, ['cart_id', cart], 'product_id');
  const cost = items.reduce((sum, item) => sum + item.price, 0);
  const count = items.reduce((sum, item) => sum + item.quantity, 0);
  return {
    products: items.map((item) => item.name),
    total_cost: cost,
    avg_price: count ? cost / count : 0.0,
  };
}

exports.handler = async function (event) {
  const results = [];
  for (const request of event.requests) {
    const route = request.route;
    const body = request.body;
    if (route === 'PUT /cart') {
      await addProduct(body.cart, body.product_id, body.name, body.price, body.quantity);
      results.push({});
    } else if (route === 'GET /cart/{id}') {
      results.push(await getProduct(body.cart, request.path.id));
    } else if (route === 'GET /cart') {
      results.push(await listCart(body.cart));
    } else {
      throw new Error(`Unknown request route: ${route}`);
    }
  }
  return { result: results };
};
