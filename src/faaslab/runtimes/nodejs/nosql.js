/**
 * SeBS-compatible NoSQL helper for Node.js functions (`require('./nosql')`),
 * for a local server of the DynamoDB API (ScyllaDB's Alternator in SeBS).
 *
 * Same export, method names, arguments and results as SeBS's Node.js nosql
 * wrappers (benchmarks/wrappers/{openwhisk,aws}/nodejs/nosql.js; SeBS's local
 * platform has no Node.js one), so benchmark functions such as 130.crud-api run
 * unchanged. Keys are `[attribute name, value]` pairs; every method returns a
 * Promise:
 *
 *     const nosql = require('./nosql');
 *     const db = nosql.nosql.get_instance();
 *     await db.insert('shopping_cart', ['cart_id', c], ['product_id', p], { price: 3 });
 *     await db.get('shopping_cart', ['cart_id', c], ['product_id', p]);  // the item or undefined
 *     await db.update('shopping_cart', ['cart_id', c], ['product_id', p], { price: 4 });
 *     await db.query('shopping_cart', ['cart_id', c], 'product_id');     // an array of items
 *     await db.delete('shopping_cart', ['cart_id', c], ['product_id', p]);
 *
 * `insert` stores `data` plus both key attributes; `update` SETs each given
 * attribute; `query` returns every item with that partition key (all pages).
 * The secondary (sort) key may be null for tables that have none.
 *
 * Environment, as SeBS sets it: NOSQL_STORAGE_ENDPOINT (host:port, plain
 * HTTP), NOSQL_STORAGE_TABLE_<name> (the real table behind the name the
 * function uses), NOSQL_STORAGE_TYPE (scylladb, or unset). The client is
 * aws-sdk v2's DynamoDB.DocumentClient (SeBS pins aws-sdk 2.1692.0), so values
 * come back as plain JavaScript numbers, strings, arrays and objects. aws-sdk
 * is loaded, and the variables read, only on first use: `get_instance()` at a
 * function's top level never fails.
 */

'use strict';

class nosql {
  /** `client` is a DynamoDB.DocumentClient; without one, it is built from the environment on first use. */
  constructor(client = null) {
    this._client = client;
    this._tables = {};
  }

  get client() {
    if (this._client === null) this._client = nosql.client_from_env();
    return this._client;
  }

  static client_from_env(env = process.env) {
    const type = env.NOSQL_STORAGE_TYPE;
    if (type && type !== 'scylladb') {
      throw new Error(`Unsupported NoSQL storage type: ${type}!`);
    }
    if (!env.NOSQL_STORAGE_ENDPOINT) {
      throw new Error('nosql is not configured: NOSQL_STORAGE_ENDPOINT not set in the environment');
    }
    // aws-sdk v2 prints a maintenance-mode notice on load, into every
    // container log; the local server is not AWS and the notice tells nothing.
    process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE ??= '1';
    const aws = require('aws-sdk'); // here, not at the top: see the header
    return new aws.DynamoDB.DocumentClient({
      endpoint: `http://${env.NOSQL_STORAGE_ENDPOINT}`,
      // A local server checks neither, but the SDK will not sign without them.
      region: 'None',
      accessKeyId: 'None',
      secretAccessKey: 'None',
      // Fail an invocation at once rather than retry with back-off inside it.
      maxRetries: 0,
    });
  }

  /** The process-wide helper, built on first use. */
  static get_instance() {
    if (!nosql.instance) nosql.instance = new nosql();
    return nosql.instance;
  }

  /** The real table name behind `table_name`, from NOSQL_STORAGE_TABLE_<table_name>. */
  _get_table(table_name) {
    if (!Object.hasOwn(this._tables, table_name)) {
      const env_name = `NOSQL_STORAGE_TABLE_${table_name}`;
      const real = process.env[env_name];
      if (!real) {
        throw new Error(
          `Couldn't find an environment variable ${env_name} for table ${table_name}`,
        );
      }
      this._tables[table_name] = real;
    }
    return this._tables[table_name];
  }

  static _key(primary_key, secondary_key) {
    const key = { [primary_key[0]]: primary_key[1] };
    if (secondary_key != null) key[secondary_key[0]] = secondary_key[1];
    return key;
  }

  async insert(table_name, primary_key, secondary_key, data) {
    const item = { ...data, ...nosql._key(primary_key, secondary_key) };
    await this.client.put({ TableName: this._get_table(table_name), Item: item }).promise();
  }

  async get(table_name, primary_key, secondary_key) {
    const res = await this.client
      .get({ TableName: this._get_table(table_name), Key: nosql._key(primary_key, secondary_key) })
      .promise();
    return res.Item;
  }

  async update(table_name, primary_key, secondary_key, updates) {
    const entries = Object.entries(updates);
    if (entries.length === 0) return; // "SET" with nothing after it is a syntax error
    // Numbered placeholders: attribute names may be reserved words (status,
    // name) or hold characters that are not allowed in a placeholder.
    const names = {};
    const values = {};
    const assignments = entries.map(([name, value], i) => {
      names[`#a${i}`] = name;
      values[`:v${i}`] = value;
      return `#a${i} = :v${i}`;
    });
    await this.client
      .update({
        TableName: this._get_table(table_name),
        Key: nosql._key(primary_key, secondary_key),
        UpdateExpression: `SET ${assignments.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      })
      .promise();
  }

  /** Every item whose partition key is primary_key; the third argument (the sort key's name) is unused, as in SeBS. */
  async query(table_name, primary_key, _secondary_key_name) {
    const items = [];
    let start;
    do {
      const res = await this.client
        .query({
          TableName: this._get_table(table_name),
          KeyConditionExpression: '#k = :k',
          ExpressionAttributeNames: { '#k': primary_key[0] },
          ExpressionAttributeValues: { ':k': primary_key[1] },
          ExclusiveStartKey: start,
        })
        .promise();
      items.push(...res.Items);
      start = res.LastEvaluatedKey; // a page ends at 1 MB of data
    } while (start !== undefined);
    return items;
  }

  async delete(table_name, primary_key, secondary_key) {
    await this.client
      .delete({ TableName: this._get_table(table_name), Key: nosql._key(primary_key, secondary_key) })
      .promise();
  }
}

exports.nosql = nosql;
