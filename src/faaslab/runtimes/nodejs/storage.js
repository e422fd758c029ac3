/**
 * SeBS-compatible object storage helper for Node.js functions
 * (`require('./storage')`), for faaslab's local S3 server.
 *
 * Same export, method names, arguments and return shapes as SeBS's Node.js
 * storage wrappers (benchmarks/wrappers/local/nodejs/storage.js and its
 * siblings), so benchmark functions run unchanged:
 *
 *     const storage = require('./storage');
 *     const client = storage.storage.get_instance();  // or: new storage.storage()
 *     const [key, done] = client.upload(bucket, 'out/a.png', '/tmp/a.png');
 *     await done;                                      // key: 'out/a.1a2b3c4d.png'
 *
 * - `unique_name(file)` → `<dir>/<name>.<8 hex digits><ext>`: repeated runs
 *   never overwrite each other.
 * - `upload(bucket, file, filepath)` → `[key, Promise]` (key made unique).
 * - `download(bucket, key, filepath)` → Promise.
 * - `uploadStream(bucket, file)` → `[writable, Promise, key]`: write the data
 *   into the PassThrough `writable` and end it; the promise settles when the
 *   object is stored.
 * - `downloadStream(bucket, key)` → Promise of a Readable with the content.
 * - `download_directory(bucket, prefix, path)` → Promise: every object under
 *   `prefix` to `path/<key>`, directories created (SeBS's Python helper has it
 *   and 311.compression calls it; SeBS's local Node.js helper lacks it).
 * - `upload_stream(bucket, file, data)` → Promise of the unique key, and
 *   `download_stream(bucket, key)` → Promise of a Buffer: the byte-level pair
 *   of the Python helper, for data already in memory.
 * - `client`: the underlying `minio.Client`, as in SeBS.
 *
 * The endpoint and credentials come from MINIO_ADDRESS (host:port),
 * MINIO_ACCESS_KEY and MINIO_SECRET_KEY (and MINIO_REGION, default us-east-1). The npm `minio` package (SeBS pins
 * 7.0.16) is loaded, and the variables read, only when the client is first
 * used, so `new storage.storage()` at a function's top level never fails and
 * functions that never touch storage run without minio. Errors from minio
 * reject the returned promises unchanged.
 */

'use strict';

const crypto = require('crypto');
const path = require('path');
const stream = require('stream');

const ENV_VARS = ['MINIO_ADDRESS', 'MINIO_ACCESS_KEY', 'MINIO_SECRET_KEY'];

/** 'host:port' or a bare host → { endPoint, port? }. minio 7.0 takes no IPv6 literal. */
function parseAddress(address) {
  const match = /^([^:]+)(?::(\d+))?$/.exec(address);
  if (!match) throw new Error(`MINIO_ADDRESS must be host:port, not ${JSON.stringify(address)}`);
  return match[2] === undefined
    ? { endPoint: match[1] }
    : { endPoint: match[1], port: Number(match[2]) };
}

class storage {
  // Lower-case: SeBS's name, which functions use as `storage.storage`.

  /** `client` is a minio.Client; without one, it is built from the environment on first use. */
  constructor(client = null) {
    this._client = client;
  }

  get client() {
    if (this._client === null) this._client = storage.client_from_env();
    return this._client;
  }

  /** A minio.Client from the MINIO_* variables (plain HTTP, as SeBS does). */
  static client_from_env(env = process.env) {
    const missing = ENV_VARS.filter((name) => !env[name]);
    if (missing.length > 0) {
      throw new Error(
        `storage is not configured: ${missing.join(', ')} not set in the environment`,
      );
    }
    const minio = require('minio'); // here, not at the top: see the header
    return new minio.Client({
      ...parseAddress(env.MINIO_ADDRESS),
      accessKey: env.MINIO_ACCESS_KEY,
      secretKey: env.MINIO_SECRET_KEY,
      useSSL: false,
      // Without a region, minio 7.0 asks the server for each bucket's
      // (GetBucketLocation) and throws, uncaught, when it cannot parse
      // SeaweedFS's answer. MinIO and SeaweedFS both serve us-east-1.
      region: env.MINIO_REGION || 'us-east-1',
    });
  }

  /** The process-wide helper, built on first use. */
  static get_instance() {
    if (!storage.instance) storage.instance = new storage();
    return storage.instance;
  }

  /** 'out/a.png' → 'out/a.1a2b3c4d.png'. */
  unique_name(file) {
    const { dir, name, ext } = path.parse(file);
    const suffix = crypto.randomBytes(4).toString('hex');
    return path.join(dir, `${name}.${suffix}${ext}`);
  }

  upload(bucket, file, filepath) {
    const key = this.unique_name(file);
    return [key, this.client.fPutObject(bucket, key, filepath)];
  }

  download(bucket, key, filepath) {
    return this.client.fGetObject(bucket, key, filepath);
  }

  uploadStream(bucket, file) {
    const writable = new stream.PassThrough();
    const key = this.unique_name(file);
    // No size: minio buffers parts until the writer ends the stream.
    const done = this.client.putObject(bucket, key, writable);
    return [writable, done, key];
  }

  downloadStream(bucket, key) {
    return this.client.getObject(bucket, key);
  }

  /** Every object under `prefix` to `dirpath/<whole key>`, one after the other. */
  async download_directory(bucket, prefix, dirpath) {
    const root = path.resolve(dirpath);
    const keys = [];
    for await (const object of this.client.listObjects(bucket, prefix, true)) {
      // Entries without a name are common prefixes; a trailing / marks a folder object.
      if (object.name && !object.name.endsWith('/')) keys.push(object.name);
    }
    for (const key of keys) {
      const target = path.resolve(root, key);
      // A key such as '../../etc/x' must not write outside dirpath.
      if (!target.startsWith(root + path.sep)) {
        throw new Error(`object key ${JSON.stringify(key)} escapes the directory ${dirpath}`);
      }
      await this.client.fGetObject(bucket, key, target); // creates the parent directories
    }
  }

  /** Store `data` (a Buffer, string or Readable) under a unique key made from `file`; resolve to the key. */
  async upload_stream(bucket, file, data) {
    const key = this.unique_name(file);
    await this.client.putObject(bucket, key, data);
    return key;
  }

  /** The whole content of an object, as a Buffer. */
  async download_stream(bucket, key) {
    const chunks = [];
    for await (const chunk of await this.client.getObject(bucket, key)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
}

exports.storage = storage;
