/**
 * faaslab function runtime for Node.js: a small HTTP server around one
 * SeBS-style function, with the same HTTP contract as the Python runtime
 * (src/faaslab/runtimes/python/server.py).
 *
 * Runs as `node server.js` inside a function container and uses the Node.js
 * standard library only (Node 18 and later). It serves
 *
 * - `GET /alive` (and `POST /alive`, which SeBS's Node.js server answers) →
 *   200 `{"status": "ok", "instance": ..., "pid": ...}`;
 * - `POST /` with the event as a JSON object → 200 `{"begin", "end",
 *   "request_id", "is_cold", "result": {"output": <handler return>},
 *   "compute_time_us", "instance"}` (SeBS's shape plus the last two fields);
 *   500 with `"error": {"type", "message", "traceback"}` instead of `"result"`
 *   when the handler throws, rejects or returns something JSON cannot encode;
 *   400 when the body is not a JSON object; 404/405 for other paths/methods.
 *   `begin`/`end` are Unix seconds with 6 decimals around the handler call.
 *
 * Environment: FAASLAB_HOST (default 0.0.0.0), FAASLAB_PORT (default 8080; 0
 * picks a free port, which the ready line on stderr names), FAASLAB_INSTANCE
 * (default: the hostname), FAASLAB_CODE_DIR (default /function),
 * FAASLAB_CONCURRENCY (invocations at once, default 1), FAASLAB_NODE_GLOBAL
 * (runtime-wide modules such as minio and aws-sdk, default
 * /opt/faaslab/node_modules).
 *
 * The function is `<CODE_DIR>/function/function.js`, exporting `handler(event)`
 * (sync or async). `require` from it finds, in this order, the usual
 * node_modules directories up from the function (`function/node_modules`),
 * `<CODE_DIR>/.node_packages/node_modules` (its installed requirements), any
 * NODE_PATH already set, then FAASLAB_NODE_GLOBAL. SeBS copies its `storage.js`
 * and `nosql.js` helpers beside function.js; the code is mounted read-only
 * here, so `require('./storage')` and `require('./nosql')` from the function
 * directory resolve to the helpers beside this file unless the function ships
 * its own.
 *
 * Exit status: 0 after SIGTERM or SIGINT (once the invocations in flight have
 * answered; a second signal exits at once); 1 when function.js cannot be
 * loaded or exports no callable `handler` (one line `faaslab: cannot load the
 * function in DIR: <type>: <message>`, then the stack, go to stderr, i.e. the
 * container log), so the host sees the failure at once instead of timing out.
 *
 * `node server.js --check` loads the function as the server would and exits:
 * 0 when it exports a handler, 1 as above. faaslab runs it once per function
 * before any instance starts.
 */

'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const Module = require('module');
const os = require('os');
const path = require('path');
const util = require('util');

const HELPERS = {
  './storage': path.join(__dirname, 'storage.js'),
  './storage.js': path.join(__dirname, 'storage.js'),
  './nosql': path.join(__dirname, 'nosql.js'),
  './nosql.js': path.join(__dirname, 'nosql.js'),
};

/** Make the function's dependencies and the runtime-wide modules requirable. */
function setModulePaths(codeDir) {
  const dirs = [
    // Before the image's modules, so the function's pinned requirements win.
    path.join(codeDir, '.node_packages', 'node_modules'),
    ...(process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean),
    process.env.FAASLAB_NODE_GLOBAL || '/opt/faaslab/node_modules',
  ];
  // NODE_PATH is read once at startup; _initPaths re-reads it. Setting the
  // variable also hands the same paths to any node process the function spawns.
  process.env.NODE_PATH = [...new Set(dirs)].join(path.delimiter);
  Module._initPaths();
}

/** Offer SeBS's helpers as `./storage` and `./nosql` to modules in functionDir. */
function offerHelpers(functionDir) {
  for (const file of new Set(Object.values(HELPERS))) {
    if (!fs.existsSync(file)) {
      console.error(`faaslab: ${file} is missing; require('./${path.parse(file).name}') will fail`);
    }
  }
  // Module filenames are real paths (symlinks resolved), so compare with one.
  const realDir = fs.existsSync(functionDir) ? fs.realpathSync(functionDir) : functionDir;
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function resolveWithHelpers(request, parent, ...rest) {
    try {
      return resolve.call(this, request, parent, ...rest);
    } catch (err) {
      // Only when normal resolution fails: a function's own storage.js wins.
      const helper = Object.hasOwn(HELPERS, request) ? HELPERS[request] : undefined;
      if (
        helper !== undefined &&
        err.code === 'MODULE_NOT_FOUND' &&
        parent?.filename &&
        path.dirname(parent.filename) === realDir &&
        fs.existsSync(helper)
      ) {
        return helper;
      }
      throw err;
    }
  };
}

function loadHandler(codeDir) {
  const functionDir = path.join(codeDir, 'function');
  const file = path.join(functionDir, 'function.js');
  setModulePaths(codeDir);
  offerHelpers(functionDir);
  const exported = require(file);
  const handler = exported?.handler;
  if (typeof handler !== 'function') {
    throw new TypeError(`${file} exports no callable \`handler(event)\``);
  }
  // Called as a method, as `exports.handler(event)` would be.
  return (event) => handler.call(exported, event);
}

/** A counting semaphore: FAASLAB_CONCURRENCY invocations at once, the rest queue in order. */
class Gate {
  constructor(size) {
    this.free = size;
    this.waiting = [];
  }

  async enter() {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise((resolve) => this.waiting.push(resolve));
  }

  leave() {
    const next = this.waiting.shift();
    if (next) next(); // the slot passes straight on: no late arrival can overtake
    else this.free += 1;
  }
}

const monotonicUs = () => process.hrtime.bigint() / 1000n;

/**
 * Wall-clock microseconds. Date.now() has only milliseconds, so the monotonic
 * clock supplies the microseconds and is re-anchored to Date.now() whenever
 * the two drift apart (NTP steps, a suspended VM), keeping begin/end
 * comparable with the host's clock.
 */
let wallOffsetUs = BigInt(Date.now()) * 1000n - monotonicUs();
function wallClockUs() {
  const mono = monotonicUs();
  const wall = BigInt(Date.now()) * 1000n;
  const drift = mono + wallOffsetUs - wall;
  if (drift > 2000n || drift < -2000n) wallOffsetUs = wall - mono;
  return mono + wallOffsetUs;
}

/** 1700000000123456n → "1700000000.123456", the Python server's f"{time.time():.6f}". */
const formatSeconds = (us) => `${us / 1000000n}.${String(us % 1000000n).padStart(6, '0')}`;

function errorType(err) {
  if (err instanceof Error || util.types.isNativeError(err)) {
    // A subclass that does not set `name` still reports its class, like Python's type name.
    if (err.name && err.name !== 'Error') return String(err.name);
    return err.constructor?.name || 'Error';
  }
  return err === null ? 'null' : typeof err; // `throw "text"` and friends
}

function safeString(value) {
  try {
    return String(value);
  } catch {
    return util.inspect(value);
  }
}

function describe(err) {
  const isError = err instanceof Error || util.types.isNativeError(err);
  const message = isError ? safeString(err.message) : safeString(err);
  const type = errorType(err);
  return {
    type,
    message,
    traceback: (isError && typeof err.stack === 'string' && err.stack) || `${type}: ${message}`,
  };
}

class Runtime {
  constructor(handler, instance, concurrency) {
    this.handler = handler;
    this.instance = instance;
    this.gate = new Gate(concurrency);
    this.cold = true;
    this.aliveBody = JSON.stringify({ status: 'ok', instance, pid: process.pid });
  }

  /** Call the handler once; return [HTTP status, JSON body]. */
  async invoke(event) {
    const requestId = crypto.randomUUID();
    await this.gate.enter();
    try {
      // A failing first call still was the cold one.
      const isCold = this.cold;
      this.cold = false;
      let failed = false; // a flag, since `throw undefined` is possible
      let error;
      let output;
      const beginUs = wallClockUs();
      const start = process.hrtime.bigint();
      try {
        output = await this.handler(event);
      } catch (err) {
        failed = true;
        error = err;
      }
      const elapsedUs = (process.hrtime.bigint() - start) / 1000n;
      // end is begin plus the measured time, so begin <= end whatever the wall clock does.
      const record = {
        begin: formatSeconds(beginUs),
        end: formatSeconds(beginUs + elapsedUs),
        request_id: requestId,
        is_cold: isCold,
      };
      const timing = { compute_time_us: Number(elapsedUs), instance: this.instance };
      let prefix = '';
      if (!failed) {
        try {
          // Encoded before leaving the gate: the output may be state that the
          // next invocation mutates. `undefined` (a handler returning nothing)
          // is null, as Python's None; a function or symbol is not JSON at all.
          const encoded = JSON.stringify(output === undefined ? null : output);
          if (encoded === undefined) {
            throw new TypeError(`a value of type ${typeof output} has no JSON form`);
          }
          // The output is encoded once and spliced in between the record and timing.
          const head = JSON.stringify(record).slice(0, -1);
          const tail = JSON.stringify(timing).slice(1);
          return [200, `${head},"result":{"output":${encoded}},${tail}`];
        } catch (err) {
          // TypeError for BigInt and cycles, or whatever a toJSON throws.
          error = err;
          prefix = 'handler result is not JSON-serialisable: ';
        }
      }
      const details = describe(error);
      details.message = prefix + details.message;
      console.error(`faaslab: invocation ${requestId} failed\n${details.traceback}`);
      return [500, JSON.stringify({ error: details, ...record, ...timing })];
    } finally {
      this.gate.leave();
    }
  }
}

const ROUTES = { '/': ['POST'], '/alive': ['GET', 'POST'] }; // path -> the methods it accepts

// utf-8 only, and strict: invalid bytes are a 400, as in the Python server,
// rather than silently replaced. A leading BOM is dropped.
const utf8 = new util.TextDecoder('utf-8', { fatal: true });

function describeJsonType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function readBody(req) {
  // Node's parser has already undone chunked transfer encoding.
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(null)); // the client went away mid-body
  });
}

function createServer(runtime) {
  let closing = false;
  let inFlight = 0;

  // No Date header, no timeouts on idle kept-alive connections or slow
  // requests: the behaviour of the Python server. Idle connections closing
  // after Node's default 5 s would race the host's reuse of its one
  // connection per instance.
  const server = http.createServer({ noDelay: true, requestTimeout: 0, headersTimeout: 0 });
  server.keepAliveTimeout = 0;

  function reply(req, res, status, body, extraHeaders = {}) {
    res.sendDate = false;
    const headers = {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      ...extraHeaders,
    };
    // Persistent connections keep Node's own "Connection: keep-alive": Node 18
    // (Debian 12's, the image's) closes the connection after any response
    // whose Connection header was removed; Node 20 would keep it open.
    if (closing || !res.shouldKeepAlive) headers.Connection = 'close';
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function error(req, res, status, type, message, extraHeaders) {
    reply(req, res, status, JSON.stringify({ error: { type, message } }), extraHeaders);
  }

  async function dispatch(req, res) {
    const body = await readBody(req); // always consumed, so the connection stays usable
    if (body === null) return;
    const urlPath = req.url.split('?', 1)[0];
    const allowed = Object.hasOwn(ROUTES, urlPath) ? ROUTES[urlPath] : undefined;
    if (allowed === undefined) {
      error(req, res, 404, 'NotFound', `no such path: ${urlPath}`);
    } else if (
      !allowed.includes(req.method) &&
      !(req.method === 'HEAD' && allowed.includes('GET'))
    ) {
      const methods = allowed.join(', ');
      error(req, res, 405, 'MethodNotAllowed', `${urlPath} accepts ${methods} only`, {
        Allow: methods,
      });
    } else if (urlPath === '/alive') {
      reply(req, res, 200, runtime.aliveBody);
    } else {
      let event;
      try {
        event = JSON.parse(utf8.decode(body));
      } catch (err) {
        error(req, res, 400, 'BadRequest', `the body is not JSON: ${err.message}`);
        return;
      }
      if (event === null || typeof event !== 'object' || Array.isArray(event)) {
        const kind = describeJsonType(event);
        error(req, res, 400, 'BadRequest', `the event must be a JSON object, not ${kind}`);
        return;
      }
      reply(req, res, ...(await runtime.invoke(event)));
    }
  }

  server.on('request', (req, res) => {
    inFlight += 1;
    res.once('close', () => {
      inFlight -= 1;
      if (closing && inFlight === 0) process.exit(0);
    });
    dispatch(req, res).catch((err) => {
      // A bug here, not in the function: answer rather than leave the client waiting.
      console.error(`faaslab: internal error\n${describe(err).traceback}`);
      if (!res.headersSent) error(req, res, 500, 'InternalError', safeString(err?.message));
      else res.destroy();
    });
  });

  // Malformed framing (a bad Content-Length, broken chunks, oversized headers)
  // is refused by Node's parser before any request event. Answer in JSON like
  // every other error and close: where the next request starts is unknown.
  server.on('clientError', (err, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, type] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'RequestHeaderFieldsTooLarge']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'RequestTimeout']
          : [400, 'BadRequest'];
    const body = JSON.stringify({
      error: { type, message: `malformed request: ${err.reason || err.message}` },
    });
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  });

  function shutdown() {
    if (closing) process.exit(0); // a second signal: stop waiting
    closing = true;
    server.close();
    // Kept-alive idle connections would hold close() open (Node 18 does not
    // close them by itself); busy ones close after their reply.
    server.closeIdleConnections();
    if (inFlight === 0) process.exit(0);
  }

  return { server, shutdown };
}

/** " (at /function/function/function.js:3)" for a SyntaxError, whose message names no place. */
function syntaxLocation(err) {
  if (!(err instanceof SyntaxError) || typeof err.stack !== 'string') return '';
  const first = err.stack.split('\n', 1)[0];
  return /^\/.+:\d+$/.test(first) ? ` (at ${first})` : '';
}

function parseInteger(name, fallback) {
  const text = (process.env[name] || '').trim() || fallback;
  if (!/^\d+$/.test(text)) throw new Error(`${name} must be a non-negative integer, not ${text}`);
  return Number(text);
}

function main() {
  const host = process.env.FAASLAB_HOST || '0.0.0.0';
  const instance = process.env.FAASLAB_INSTANCE || os.hostname();
  const codeDir = process.env.FAASLAB_CODE_DIR || '/function';
  let port;
  let concurrency;
  try {
    port = parseInteger('FAASLAB_PORT', '8080');
    concurrency = Math.max(1, parseInteger('FAASLAB_CONCURRENCY', '1'));
  } catch (err) {
    console.error(`faaslab: ${err.message}`);
    return process.exit(1);
  }

  // A function's forgotten .catch() must not end the instance: log it, go on.
  process.on('unhandledRejection', (reason) => {
    console.error(`faaslab: unhandled promise rejection\n${describe(reason).traceback}`);
  });

  // Load before listening: a broken function must never look alive.
  let handler;
  try {
    handler = loadHandler(codeDir);
  } catch (err) {
    // One line that says it all (the host shows it as the error), then the stack.
    const details = describe(err);
    console.error(
      `faaslab: cannot load the function in ${path.join(codeDir, 'function')}: ` +
        `${details.type}: ${details.message}${syntaxLocation(err)}`,
    );
    console.error(details.traceback);
    return process.exit(1);
  }
  if (process.argv.includes('--check')) {
    // The host's load check: the function loads and exports a handler. Exit at
    // once, whatever timers or sockets its top-level code left open.
    console.error(`faaslab: the function in ${path.join(codeDir, 'function')} loads`);
    return process.exit(0);
  }

  const { server, shutdown } = createServer(new Runtime(handler, instance, concurrency));
  server.on('error', (err) => {
    console.error(`faaslab: cannot listen on ${host}:${port}: ${err.message}`);
    process.exit(1);
  });
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  server.listen({ host, port, backlog: 128 }, () => {
    // The same line as the Python server: the host and the tests wait for it.
    const bound = server.address().port;
    console.error(
      `faaslab runtime ready on http://${host}:${bound} (instance ${instance}, pid ${process.pid})`,
    );
  });
  return undefined;
}

main();
