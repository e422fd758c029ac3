"""The Node.js runtime server and its SeBS helpers, run with the host's node (127.0.0.1 only).

server.js keeps the HTTP contract of the Python runtime (test_runtime_server.py);
storage.js and nosql.js are checked with the npm packages SeBS pins (installed
with the host's npm into a temporary directory) against small in-process fakes
of the S3 and DynamoDB HTTP APIs, so no test needs a container or a real server.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any, ClassVar

import pytest

# By path, not through the installed package: the venv's editable install may
# point at another checkout.
RUNTIME_DIR = Path(__file__).resolve().parents[2] / "src" / "faaslab" / "runtimes" / "nodejs"
SERVER = RUNTIME_DIR / "server.js"
STORAGE = RUNTIME_DIR / "storage.js"
NOSQL = RUNTIME_DIR / "nosql.js"
PACKAGE_JSON = RUNTIME_DIR / "package.json"
READY = re.compile(
    r"faaslab runtime ready on http://127\.0\.0\.1:(\d+) \(instance (.*), pid (\d+)\)"
)
DEADLINE_S = 15.0
SEBS_PINS = {"minio": "7.0.16", "aws-sdk": "2.1692.0"}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not installed: the Node.js runtime tests need it "
            "(Debian: apt-get install nodejs npm)"
        )
    return found


@pytest.fixture(scope="session")
def node() -> str:
    return _tool("node")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll until condition() is truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)
    return result


FULL_FUNCTION = {
    "function/function.js": """
        const fs = require('fs');
        const helper = require('./helper');
        const inner = require('./lib/inner');
        const localpkg = require('localpkg');   // function/node_modules
        const extpkg = require('extpkg');       // .node_packages/node_modules
        const globalpkg = require('globalpkg'); // FAASLAB_NODE_GLOBAL
        const both = require('both');           // in both: the function's copy wins
        const storage = require('./storage');
        const nosql = require('./nosql');

        class NotFound extends Error {}

        exports.handler = async function (event) {
          switch (event.action) {
            case 'sleep':
              if (event.marker) fs.writeFileSync(event.marker, '');
              await new Promise((resolve) => setTimeout(resolve, event.seconds * 1000));
              return { slept: event.seconds };
            case 'throw':
              throw new RangeError(event.message ?? 'boom');
            case 'reject':
              return Promise.reject(new TypeError('rejected later'));
            case 'throw-string':
              throw 'plain string';
            case 'throw-custom':
              throw new NotFound('no such cart');
            case 'bigint':
              return { value: 1n };
            case 'cycle': {
              const value = {};
              value.self = value;
              return value;
            }
            case 'function':
              return () => 1;
            case 'nothing':
              return undefined;
            case 'stray-rejection':
              Promise.reject(new Error('stray rejection nobody awaits'));
              return 'fine';
            case 'helpers':
              return {
                storage: require.resolve('./storage'),
                storageJs: require.resolve('./storage.js'),
                nosql: require.resolve('./nosql'),
                storageApi: typeof storage.storage.get_instance,
                nosqlApi: typeof nosql.nosql.get_instance,
                depsLoaded: Object.keys(require.cache).filter(
                  (file) => /[\\/](minio|aws-sdk)[\\/]/.test(file),
                ),
                fromSubdirectory: inner.storageFromHere(),
              };
            case 'paths':
              return { nodePath: process.env.NODE_PATH };
          }
          return {
            echo: event,
            helper: helper.VALUE,
            localpkg: localpkg.VALUE,
            extpkg: extpkg.VALUE,
            globalpkg: globalpkg.VALUE,
            both: both.VALUE,
          };
        };
    """,
    "function/helper.js": "exports.VALUE = 'from a sibling module';\n",
    "function/lib/inner.js": """
        // The helpers are offered to the function's own directory only.
        exports.storageFromHere = () => {
          try {
            return require.resolve('./storage');
          } catch (err) {
            return err.code;
          }
        };
    """,
    "function/node_modules/localpkg/index.js": "exports.VALUE = 'from function/node_modules';\n",
    ".node_packages/node_modules/extpkg/index.js": "exports.VALUE = 'from .node_packages';\n",
    ".node_packages/node_modules/both/index.js": "exports.VALUE = 'from .node_packages';\n",
}

GLOBAL_MODULES = {
    "globalpkg/index.js": "exports.VALUE = 'from the global modules';\n",
    "both/index.js": "exports.VALUE = 'from the global modules';\n",
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without anything that would steer the runtime."""
    prefixes = ("FAASLAB_", "MINIO_", "NOSQL_", "NODE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


class Runtime:
    """One `node server.js` subprocess and a few ways to talk to it."""

    def __init__(
        self,
        node: str,
        code_dir: Path,
        global_dir: Path,
        instance: str | None,
        env: dict[str, str],
        args: tuple[str, ...] = (),
    ) -> None:
        settings = {
            "FAASLAB_HOST": "127.0.0.1",
            "FAASLAB_PORT": "0",  # the kernel picks a free port; the ready line names it
            "FAASLAB_CODE_DIR": str(code_dir),
            "FAASLAB_NODE_GLOBAL": str(global_dir),
        }
        environment = clean_env(**(settings | env))
        if instance is not None:
            environment["FAASLAB_INSTANCE"] = instance
        self.stderr_path = code_dir.parent / f"{code_dir.name}.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [node, str(SERVER), *args],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.port = 0

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self) -> Runtime:
        def ready() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.stderr()}")
            return READY.search(self.stderr())

        match = wait_for(ready, "the ready line")
        self.port = int(match[1])
        assert int(match[3]) == self.proc.pid
        return self

    def wait_exit(self) -> int:
        return self.proc.wait(timeout=DEADLINE_S)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE_S)

    def request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        status, _, reply = self.request_with_headers(method, path, body)
        return status, reply

    def request_with_headers(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, http.client.HTTPMessage, dict[str, Any]]:
        conn = self.connect()
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, response.headers, json.loads(response.read())
        finally:
            conn.close()

    def invoke(self, event: Any) -> tuple[int, dict[str, Any]]:
        return self.request("POST", "/", json.dumps(event).encode())

    def raw(self, request: bytes) -> bytes:
        """Send raw bytes on a fresh connection; everything the server sends until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE_S) as sock:
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        return reply


class Launcher:
    """Writes code directories and starts runtimes; stop_all() kills whatever is left."""

    def __init__(self, node: str, root: Path) -> None:
        self.node = node
        self.root = root
        self.runtimes: list[Runtime] = []

    def spawn(
        self,
        files: dict[str, str],
        instance: str | None = "test-instance",
        args: tuple[str, ...] = (),
        **env: str,
    ) -> Runtime:
        code_dir = self.root / f"code-{len(self.runtimes)}"
        global_dir = self.root / f"global-{len(self.runtimes)}"
        write_tree(code_dir, files)
        write_tree(global_dir, GLOBAL_MODULES)
        (code_dir / "function").mkdir(parents=True, exist_ok=True)
        runtime = Runtime(self.node, code_dir, global_dir, instance, env, args)
        self.runtimes.append(runtime)
        return runtime

    def stop_all(self) -> None:
        for runtime in self.runtimes:
            runtime.stop()


@pytest.fixture
def launcher(node: str, tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(node, tmp_path)
    yield launcher
    launcher.stop_all()


@dataclass
class IdleConnection:
    conn: http.client.HTTPConnection
    since: float


@pytest.fixture(scope="module")
def shared_and_idle(
    node: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Runtime, IdleConnection]]:
    launcher = Launcher(node, tmp_path_factory.mktemp("nodejs-runtime"))
    try:
        runtime = launcher.spawn(FULL_FUNCTION).wait_ready()
        # Used once now, then left idle until the last test checks it: the
        # file's other tests run meanwhile.
        conn = runtime.connect()
        conn.request("GET", "/alive")
        assert conn.getresponse().read()
        idle = IdleConnection(conn, time.monotonic())
        yield runtime, idle
        conn.close()
    finally:
        launcher.stop_all()


@pytest.fixture
def shared(shared_and_idle: tuple[Runtime, IdleConnection]) -> Runtime:
    """One server for the tests that do not care about coldness or process exit."""
    return shared_and_idle[0]


# --- the HTTP contract -------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_alive_names_instance_and_pid(shared: Runtime, method: str) -> None:
    status, body = shared.request(method, "/alive")
    assert (status, body) == (
        200,
        {"status": "ok", "instance": "test-instance", "pid": shared.proc.pid},
    )


def test_invocation_response_shape(shared: Runtime) -> None:
    status, body = shared.invoke({"x": [1, "two"], "nested": {"ok": True}})
    assert status == 200
    assert list(body) == [
        "begin", "end", "request_id", "is_cold", "result", "compute_time_us", "instance",
    ]  # fmt: skip
    assert re.fullmatch(r"\d+\.\d{6}", body["begin"])
    assert re.fullmatch(r"\d+\.\d{6}", body["end"])
    assert float(body["begin"]) <= float(body["end"])
    assert abs(float(body["begin"]) - time.time()) < 60
    assert uuid.UUID(body["request_id"]).version == 4
    assert isinstance(body["is_cold"], bool)
    assert isinstance(body["compute_time_us"], int)
    assert body["instance"] == "test-instance"
    assert body["result"] == {
        "output": {
            "echo": {"x": [1, "two"], "nested": {"ok": True}},
            "helper": "from a sibling module",
            "localpkg": "from function/node_modules",
            "extpkg": "from .node_packages",
            "globalpkg": "from the global modules",
            "both": "from .node_packages",
        }
    }


def test_request_ids_differ(shared: Runtime) -> None:
    ids = {shared.invoke({})[1]["request_id"] for _ in range(3)}
    assert len(ids) == 3


def test_module_paths_reach_the_function_and_its_children(shared: Runtime) -> None:
    _, body = shared.invoke({"action": "paths"})
    node_path = body["result"]["output"]["nodePath"].split(os.pathsep)
    assert node_path[0].endswith("/.node_packages/node_modules")
    assert node_path[-1].startswith(str(shared.stderr_path.parent))  # FAASLAB_NODE_GLOBAL
    assert Path(node_path[-1]).name.startswith("global-")


def test_timing_of_a_sleeping_handler(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "sleep", "seconds": 0.05})
    assert status == 200
    assert body["result"] == {"output": {"slept": 0.05}}
    begin, end, compute_us = float(body["begin"]), float(body["end"]), body["compute_time_us"]
    assert begin <= end
    assert 50_000 <= compute_us < 1_000_000
    # Both figures bracket the same call.
    assert abs((end - begin) * 1e6 - compute_us) < 5_000


def test_handler_throw_is_500_and_server_keeps_serving(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "throw", "message": "no such image"})
    assert status == 500
    assert list(body) == [
        "error", "begin", "end", "request_id", "is_cold", "compute_time_us", "instance",
    ]  # fmt: skip
    error = body["error"]
    assert set(error) == {"type", "message", "traceback"}
    assert error["type"] == "RangeError"
    assert error["message"] == "no such image"
    assert error["traceback"].startswith("RangeError: no such image\n")
    assert "function.js" in error["traceback"]
    assert uuid.UUID(body["request_id"]).version == 4
    wait_for(lambda: f"invocation {body['request_id']} failed" in shared.stderr(), "the log")
    assert "no such image" in shared.stderr()

    status, body = shared.invoke({"after": "error"})
    assert status == 200
    assert body["result"]["output"]["echo"] == {"after": "error"}


@pytest.mark.parametrize(
    ("action", "error_type", "message"),
    [
        ("reject", "TypeError", "rejected later"),
        ("throw-custom", "NotFound", "no such cart"),  # a subclass that sets no name
        ("throw-string", "string", "plain string"),  # not an Error at all
    ],
)
def test_rejections_and_odd_throws_are_500(
    shared: Runtime, action: str, error_type: str, message: str
) -> None:
    status, body = shared.invoke({"action": action})
    assert status == 500
    assert body["error"]["type"] == error_type
    assert body["error"]["message"] == message
    assert message in body["error"]["traceback"]
    assert shared.invoke({})[0] == 200


@pytest.mark.parametrize("action", ["bigint", "cycle", "function"])
def test_result_that_is_not_json_is_an_error(shared: Runtime, action: str) -> None:
    status, body = shared.invoke({"action": action})
    assert status == 500
    assert "result" not in body
    assert body["error"]["type"] == "TypeError"
    assert body["error"]["message"].startswith("handler result is not JSON-serialisable: ")
    assert shared.invoke({})[0] == 200


def test_undefined_result_is_null(shared: Runtime) -> None:
    # 010.sleep resolves to undefined: the key must still be there, as Python's None.
    status, body = shared.invoke({"action": "nothing"})
    assert (status, body["result"]) == (200, {"output": None})


def test_stray_rejection_is_logged_and_the_server_lives(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "stray-rejection"})
    assert (status, body["result"]) == (200, {"output": "fine"})
    wait_for(lambda: "stray rejection nobody awaits" in shared.stderr(), "the logged rejection")
    assert "faaslab: unhandled promise rejection" in shared.stderr()
    assert shared.invoke({})[0] == 200
    assert shared.proc.poll() is None


@pytest.mark.parametrize(
    "body", [b"not json", b"", b"\xff\xfe{}", b"[1, 2]", b'"a string"', b"42", b"null", b"true"]
)
def test_body_that_is_not_a_json_object_is_400(shared: Runtime, body: bytes) -> None:
    status, reply = shared.request("POST", "/", body)
    assert status == 400
    assert reply["error"]["type"] == "BadRequest"
    assert reply["error"]["message"].startswith(("the body is not JSON", "the event must be"))


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/nope", 404, None),
        ("POST", "/nope", 404, None),
        ("POST", "/alive/", 404, None),
        ("GET", "/", 405, "POST"),
        ("PUT", "/", 405, "POST"),
        ("DELETE", "/", 405, "POST"),
        ("PUT", "/alive", 405, "GET, POST"),
    ],
)
def test_unknown_path_and_wrong_method(
    shared: Runtime, method: str, path: str, status: int, allow: str | None
) -> None:
    got, headers, body = shared.request_with_headers(method, path, b"{}")
    assert got == status
    assert body["error"]["type"] == ("NotFound" if status == 404 else "MethodNotAllowed")
    assert path in body["error"]["message"]
    assert headers.get("Allow") == allow


def test_query_string_is_ignored(shared: Runtime) -> None:
    assert shared.request("GET", "/alive?probe=1")[0] == 200
    assert shared.request("POST", "/?x=1", b"{}")[0] == 200


def test_response_head_is_exactly_the_python_servers(shared: Runtime) -> None:
    # No Date, no Keep-Alive: the Python server's head (Connection as the client asked).
    request = b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head, _, body = shared.raw(request).partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 200 OK",
        b"Content-Type: application/json",
        f"Content-Length: {len(body)}".encode(),
        b"Connection: close",  # the client asked to close, and the server did
    ]
    assert json.loads(body)["status"] == "ok"


def test_keep_alive_reuses_one_connection(shared: Runtime) -> None:
    conn = shared.connect()
    try:
        request_ids = []
        sockets = []
        for i in range(3):
            conn.request("POST", "/", body=json.dumps({"i": i}).encode())
            response = conn.getresponse()
            assert response.status == 200
            # Node's own header: Node 18 closes after a response without it.
            assert response.getheader("Connection") == "keep-alive"
            assert response.getheader("Keep-Alive") is None
            assert response.getheader("Date") is None
            request_ids.append(json.loads(response.read())["request_id"])
            sockets.append(conn.sock)
        conn.request("GET", "/alive")
        assert conn.getresponse().read()
        sockets.append(conn.sock)
    finally:
        conn.close()
    # http.client silently reconnects when the server closed: same socket = kept alive.
    assert sockets[0] is not None
    assert all(sock is sockets[0] for sock in sockets)
    assert len(set(request_ids)) == 3


def test_head_alive_has_no_body_and_keeps_the_connection(shared: Runtime) -> None:
    conn = shared.connect()
    try:
        conn.request("HEAD", "/alive")
        response = conn.getresponse()
        assert response.status == 200
        assert int(response.getheader("Content-Length", "0")) > 0
        assert response.read() == b""
        sock = conn.sock
        conn.request("POST", "/", body=b"{}")
        assert conn.getresponse().status == 200
        assert conn.sock is sock
    finally:
        conn.close()


def test_chunked_body_is_read_and_the_connection_kept(shared: Runtime) -> None:
    conn = shared.connect()
    try:
        conn.request("POST", "/", body=iter([b'{"chunked"', b": true}"]), encode_chunked=True)
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 200
        assert body["result"]["output"]["echo"] == {"chunked": True}
        sock = conn.sock
        conn.request("POST", "/", body=b"{}")
        assert conn.getresponse().status == 200
        assert conn.sock is sock
    finally:
        conn.close()


@pytest.mark.parametrize("length", ["abc", "-1"])
def test_malformed_content_length_is_400_and_closes(shared: Runtime, length: str) -> None:
    reply = shared.raw(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in head
    assert json.loads(body)["error"]["type"] == "BadRequest"


def test_health_probe_is_not_blocked_by_a_running_invocation(
    shared: Runtime, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    slow: list[int] = []
    thread = threading.Thread(
        target=lambda: slow.append(
            shared.invoke({"action": "sleep", "seconds": 1.0, "marker": str(marker)})[0]
        )
    )
    thread.start()
    try:
        wait_for(marker.exists, "the slow invocation to start")
        start = time.monotonic()
        assert shared.request("GET", "/alive")[0] == 200
        assert time.monotonic() - start < 0.5
        assert not slow  # the probe really overlapped the invocation
    finally:
        thread.join(DEADLINE_S)
    assert slow == [200]


def _overlapping_sleeps(runtime: Runtime, count: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(runtime.invoke({"action": "sleep", "seconds": 0.2})[1])
        )
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
    assert len(results) == count
    return sorted(results, key=lambda body: float(body["begin"]))


def test_invocations_run_one_at_a_time(shared: Runtime) -> None:
    first, second = _overlapping_sleeps(shared, 2)
    assert float(first["end"]) <= float(second["begin"])


def test_concurrency_setting_lets_invocations_overlap(launcher: Launcher) -> None:
    runtime = launcher.spawn(FULL_FUNCTION, FAASLAB_CONCURRENCY="2").wait_ready()
    first, second = _overlapping_sleeps(runtime, 2)
    assert float(second["begin"]) < float(first["end"])


def test_is_cold_exactly_once_even_when_first_call_fails(launcher: Launcher) -> None:
    runtime = launcher.spawn(FULL_FUNCTION, instance=None).wait_ready()
    statuses, colds = [], []
    for event in ({"action": "throw"}, {}, {}):
        status, body = runtime.invoke(event)
        statuses.append(status)
        colds.append(body["is_cold"])
    assert statuses == [500, 200, 200]
    assert colds == [True, False, False]
    # Without FAASLAB_INSTANCE the instance is the hostname (the container id in Docker).
    assert body["instance"] == socket.gethostname()


def test_sync_handler_and_module_exports(launcher: Launcher) -> None:
    files = {
        "function/function.js": """
            module.exports = { handler: (event) => ({ doubled: event.n * 2 }) };
        """
    }
    runtime = launcher.spawn(files).wait_ready()
    status, body = runtime.invoke({"n": 21})
    assert (status, body["result"], body["is_cold"]) == (200, {"output": {"doubled": 42}}, True)


# --- SeBS's helpers as ./storage and ./nosql ---------------------------------


def test_helpers_resolve_beside_the_server_without_loading_their_deps(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "helpers"})
    assert status == 200
    output = body["result"]["output"]
    assert Path(output["storage"]) == STORAGE.resolve()
    assert Path(output["storageJs"]) == STORAGE.resolve()
    assert Path(output["nosql"]) == NOSQL.resolve()
    assert (output["storageApi"], output["nosqlApi"]) == ("function", "function")
    assert output["depsLoaded"] == []  # minio and aws-sdk load on first use only
    assert output["fromSubdirectory"] == "MODULE_NOT_FOUND"


def test_function_that_ships_its_own_storage_keeps_it(launcher: Launcher) -> None:
    files = {
        "function/function.js": """
            const storage = require('./storage');
            const nosql = require('./nosql');
            exports.handler = async () => ({
              mark: storage.MARK,
              storage: require.resolve('./storage'),
              nosql: require.resolve('./nosql'),
            });
        """,
        "function/storage.js": "exports.MARK = 'own';\n",
    }
    runtime = launcher.spawn(files).wait_ready()
    _, body = runtime.invoke({})
    output = body["result"]["output"]
    assert output["mark"] == "own"
    assert Path(output["storage"]).name == "storage.js"
    assert Path(output["storage"]).parent.name == "function"
    assert Path(output["nosql"]) == NOSQL.resolve()


# --- start-up failures and exit ----------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("throw new Error('broken at import');\n", "Error: broken at import"),
        ("exports.handler = (\n", "SyntaxError"),
        ("require('no_such_module_xyz');\n", "Cannot find module 'no_such_module_xyz'"),
        ("exports.other = () => ({});\n", "exports no callable `handler(event)`"),
        ("exports.handler = 42;\n", "exports no callable `handler(event)`"),
        (None, "Cannot find module"),
    ],
)
def test_broken_function_exits_1_before_listening(
    launcher: Launcher, source: str | None, expected: str
) -> None:
    files = {} if source is None else {"function/function.js": source}
    runtime = launcher.spawn(files)
    assert runtime.wait_exit() == 1
    stderr = runtime.stderr()
    assert "faaslab: cannot load the function in " in stderr
    assert expected in stderr
    assert "function.js" in stderr
    assert "ready" not in stderr


def test_the_load_error_is_one_line_that_says_it_all(launcher: Launcher) -> None:
    # The host shows this line as the error (faaslab._function.load_failure).
    runtime = launcher.spawn({"function/function.js": "const a = 1;\nexports.handler = (\n"})
    assert runtime.wait_exit() == 1
    first = runtime.stderr().splitlines()[0]
    assert first.startswith("faaslab: cannot load the function in ")
    assert "SyntaxError: " in first
    assert re.search(r"\(at /.*function\.js:\d+\)$", first), first


@pytest.mark.parametrize(
    ("source", "status", "expected"),
    [
        (
            # A timer left running at the top level does not keep the check alive.
            "setInterval(() => {}, 1000);\nexports.handler = async () => 1;\n",
            0,
            "loads",
        ),
        ("exports.other = 1;\n", 1, "exports no callable `handler(event)`"),
        ("require('no_such_module_xyz');\n", 1, "Cannot find module 'no_such_module_xyz'"),
    ],
)
def test_check_mode_loads_the_function_and_exits(
    launcher: Launcher, source: str, status: int, expected: str
) -> None:
    runtime = launcher.spawn({"function/function.js": source}, args=("--check",))
    assert runtime.wait_exit() == status
    stderr = runtime.stderr()
    assert expected in stderr.splitlines()[0]
    assert "ready on" not in stderr  # it never listens


def test_bad_port_setting_exits_1(launcher: Launcher) -> None:
    runtime = launcher.spawn(FULL_FUNCTION, FAASLAB_PORT="http")
    assert runtime.wait_exit() == 1
    assert "FAASLAB_PORT must be a non-negative integer" in runtime.stderr()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_0_promptly_with_a_kept_alive_connection(
    launcher: Launcher, signum: signal.Signals
) -> None:
    runtime = launcher.spawn(FULL_FUNCTION).wait_ready()
    conn = runtime.connect()
    try:
        conn.request("POST", "/", body=b"{}")
        assert conn.getresponse().read()  # the connection now idles, kept alive
        start = time.monotonic()
        runtime.proc.send_signal(signum)
        assert runtime.wait_exit() == 0
        # < 1 s is the target; the margin absorbs a loaded 2-core machine.
        assert time.monotonic() - start < 2.0
    finally:
        conn.close()


def test_sigterm_lets_the_running_invocation_answer(launcher: Launcher, tmp_path: Path) -> None:
    runtime = launcher.spawn(FULL_FUNCTION).wait_ready()
    marker = tmp_path / "started"
    replies: list[tuple[int, str | None]] = []

    def call() -> None:
        conn = runtime.connect()
        try:
            event = {"action": "sleep", "seconds": 0.3, "marker": str(marker)}
            conn.request("POST", "/", body=json.dumps(event).encode())
            response = conn.getresponse()
            response.read()
            replies.append((response.status, response.getheader("Connection")))
        finally:
            conn.close()

    thread = threading.Thread(target=call)
    thread.start()
    try:
        wait_for(marker.exists, "the invocation to start")
        runtime.proc.send_signal(signal.SIGTERM)
        assert runtime.wait_exit() == 0
    finally:
        thread.join(DEADLINE_S)
    assert replies == [(200, "close")]


# --- storage.js and nosql.js with SeBS's npm packages ------------------------


def run_node(node: str, script: str, **env: str) -> Any:
    """Run a script with `node -e`; its last stdout line, as JSON."""
    done = subprocess.run(
        [node, "-e", textwrap.dedent(script)],
        env=clean_env(STORAGE_JS=str(STORAGE), NOSQL_JS=str(NOSQL), **env),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_package_json_pins_what_sebs_adds(node: str) -> None:
    package = json.loads(PACKAGE_JSON.read_text())
    # SeBS's pins, plus uuid, which SeBS's local image installs globally.
    assert package["dependencies"] == {**SEBS_PINS, "uuid": "9.0.1"}
    assert package.get("type", "commonjs") == "commonjs"  # server.js and the helpers use require


@pytest.fixture(scope="module")
def node_modules(node: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """package.json's dependencies, installed by the host's npm (the registry is reachable)."""
    npm = _tool("npm")
    prefix = tmp_path_factory.mktemp("node-deps")
    dependencies = json.loads(PACKAGE_JSON.read_text())["dependencies"]
    done = subprocess.run(
        [
            npm, "install", "--prefix", str(prefix), "--no-save", "--no-package-lock",
            "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error",
            *(f"{name}@{version}" for name, version in dependencies.items()),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"npm could not install {dependencies}:\n{done.stderr}")
    return prefix / "node_modules"


def test_helpers_need_no_deps_until_first_use(node: str) -> None:
    # No NODE_PATH: neither minio nor aws-sdk can be found, yet both helpers
    # load and construct; the first use names what is missing.
    result = run_node(
        node,
        """
        const { storage } = require(process.env.STORAGE_JS);
        const { nosql } = require(process.env.NOSQL_JS);
        const s = new storage();
        const db = nosql.get_instance();
        const errors = {};
        try { s.client; } catch (err) { errors.storage = err.message; }
        try { db.client; } catch (err) { errors.nosql = err.message; }
        console.log(JSON.stringify({
          errors,
          sameStorage: storage.get_instance() === storage.get_instance(),
          sameNosql: nosql.get_instance() === db,
          names: ['out/a.png', 'noext', 'a.tar.gz', 'deep/dir/x.json'].map((f) => s.unique_name(f)),
        }));
        """,
    )
    assert result["errors"] == {
        "storage": "storage is not configured: MINIO_ADDRESS, MINIO_ACCESS_KEY, "
        "MINIO_SECRET_KEY not set in the environment",
        "nosql": "nosql is not configured: NOSQL_STORAGE_ENDPOINT not set in the environment",
    }
    assert result["sameStorage"] is True
    assert result["sameNosql"] is True
    hex8 = "[0-9a-f]{8}"
    patterns = [rf"out/a\.{hex8}\.png", rf"noext\.{hex8}", rf"a\.tar\.{hex8}\.gz"]
    patterns.append(rf"deep/dir/x\.{hex8}\.json")
    assert all(map(re.fullmatch, patterns, result["names"])), result["names"]


def test_helpers_load_with_sebs_packages(node: str, node_modules: Path) -> None:
    result = run_node(
        node,
        """
        const minio = require('minio');
        const { storage } = require(process.env.STORAGE_JS);
        const { nosql } = require(process.env.NOSQL_JS);
        const s = storage.get_instance();
        const named = storage.client_from_env({ ...process.env, MINIO_ADDRESS: 'minio' });
        const db = nosql.get_instance().client;
        console.log(JSON.stringify({
          isMinio: s.client instanceof minio.Client,
          host: s.client.host, port: s.client.port, named: [named.host, named.port],
          endpoint: db.service.endpoint.href,
          hasDocumentClientApi: ['put', 'get', 'update', 'query', 'delete']
            .every((m) => typeof db[m] === 'function'),
        }));
        """,
        NODE_PATH=str(node_modules),
        MINIO_ADDRESS="127.0.0.1:9000",
        MINIO_ACCESS_KEY="key",
        MINIO_SECRET_KEY="secret",
        NOSQL_STORAGE_TYPE="scylladb",
        NOSQL_STORAGE_ENDPOINT="127.0.0.1:8000",
    )
    assert result == {
        "isMinio": True,
        "host": "127.0.0.1",
        "port": 9000,
        "named": ["minio", 80],  # no port: minio's default for plain HTTP
        "endpoint": "http://127.0.0.1:8000/",
        "hasDocumentClientApi": True,
    }


def test_nosql_refuses_another_storage_type(node: str, node_modules: Path) -> None:
    result = run_node(
        node,
        """
        const { nosql } = require(process.env.NOSQL_JS);
        try {
          nosql.get_instance().client;
        } catch (err) {
          console.log(JSON.stringify(err.message));
        }
        """,
        NODE_PATH=str(node_modules),
        NOSQL_STORAGE_TYPE="mongodb",
        NOSQL_STORAGE_ENDPOINT="127.0.0.1:8000",
    )
    assert result == "Unsupported NoSQL storage type: mongodb!"


class _FakeHTTP(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[_FakeHTTP]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.objects: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class _FakeS3(_FakeHTTP):
    """What minio-js 7.0 asks for: bucket location, PUT, HEAD and GET of objects, ListObjects."""

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urllib.parse.urlsplit(self.path)
        bucket, _, key = url.path.lstrip("/").partition("/")
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        return bucket, urllib.parse.unquote(key), query

    def do_PUT(self) -> None:
        bucket, key, _ = self._target()
        data = self.body()
        self.server.objects[bucket, key] = data
        self.reply(200, ETag=f'"{hashlib.md5(data).hexdigest()}"')

    def do_HEAD(self) -> None:
        bucket, key, _ = self._target()
        if (bucket, key) not in self.server.objects:
            self.reply(404)
            return
        data = self.server.objects[bucket, key]
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(data).hexdigest()}"')
        self.send_header("Last-Modified", formatdate(usegmt=True))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self) -> None:
        bucket, key, query = self._target()
        if "location" in query:
            self.reply(200, f'<LocationConstraint xmlns="{S3_NS}"></LocationConstraint>'.encode())
        elif not key:
            prefix = query.get("prefix", [""])[0]
            contents = "".join(
                f"<Contents><Key>{name}</Key><LastModified>2026-01-01T00:00:00.000Z"
                f'</LastModified><ETag>"{hashlib.md5(data).hexdigest()}"</ETag>'
                f"<Size>{len(data)}</Size></Contents>"
                for (b, name), data in sorted(self.server.objects.items())
                if b == bucket and name.startswith(prefix)
            )
            xml = (
                f'<ListBucketResult xmlns="{S3_NS}"><Name>{bucket}</Name><Prefix>{prefix}'
                f"</Prefix><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
            )
            self.reply(200, xml.encode(), Content_Type="application/xml")
        elif (bucket, key) in self.server.objects:
            self.reply(200, self.server.objects[bucket, key])
        else:
            self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>")


@pytest.fixture
def fake_s3() -> Iterator[FakeServer]:
    server = FakeServer(_FakeS3)
    yield server
    server.stop()


def test_storage_round_trip_with_minio(
    node: str, node_modules: Path, fake_s3: FakeServer, tmp_path: Path
) -> None:
    source = tmp_path / "data.txt"
    source.write_text("uploaded from a file")
    fake_s3.objects["bkt", "in/tree/a.txt"] = b"a"
    fake_s3.objects["bkt", "in/tree/sub/b.txt"] = b"b"
    fake_s3.objects["bkt", "in/tree/sub/"] = b""  # a folder marker, skipped
    result = run_node(
        node,
        """
        const fs = require('fs');
        const path = require('path');
        const { storage } = require(process.env.STORAGE_JS);
        const s = storage.get_instance();
        const tmp = process.env.TMP_DIR;
        (async () => {
          const out = {};
          const [key, uploaded] = s.upload('bkt', 'in/data.txt', path.join(tmp, 'data.txt'));
          out.uploadKey = key;
          out.uploadIsPromise = uploaded instanceof Promise;
          await uploaded;

          const [writable, stored, streamKey] = s.uploadStream('bkt', 'out/stream.bin');
          out.streamKey = streamKey;
          writable.write('stre');
          writable.end('amed');
          await stored;

          const readable = await s.downloadStream('bkt', streamKey);
          const chunks = [];
          for await (const chunk of readable) chunks.push(chunk);
          out.streamed = Buffer.concat(chunks).toString();

          await s.download('bkt', key, path.join(tmp, 'back.txt'));
          out.downloaded = fs.readFileSync(path.join(tmp, 'back.txt'), 'utf8');

          out.bytesKey = await s.upload_stream('bkt', 'out/é.txt', 'héllo');
          out.bytes = (await s.download_stream('bkt', out.bytesKey)).toString();

          await s.download_directory('bkt', 'in/tree', path.join(tmp, 'dir'));
          out.tree = fs.readdirSync(path.join(tmp, 'dir'), { recursive: true }).sort();
          out.treeB = fs.readFileSync(path.join(tmp, 'dir', 'in/tree/sub/b.txt'), 'utf8');
          console.log(JSON.stringify(out));
        })().catch((err) => { console.error(err.stack); process.exit(1); });
        """,
        NODE_PATH=str(node_modules),
        MINIO_ADDRESS=fake_s3.address,
        MINIO_ACCESS_KEY="key",
        MINIO_SECRET_KEY="secret",
        TMP_DIR=str(tmp_path),
    )
    hex8 = "[0-9a-f]{8}"
    assert re.fullmatch(rf"in/data\.{hex8}\.txt", result["uploadKey"])
    assert result["uploadIsPromise"] is True
    assert fake_s3.objects["bkt", result["uploadKey"]] == b"uploaded from a file"
    assert re.fullmatch(rf"out/stream\.{hex8}\.bin", result["streamKey"])
    assert fake_s3.objects["bkt", result["streamKey"]] == b"streamed"
    assert result["streamed"] == "streamed"
    assert result["downloaded"] == "uploaded from a file"
    assert re.fullmatch(rf"out/é\.{hex8}\.txt", result["bytesKey"])
    assert fake_s3.objects["bkt", result["bytesKey"]] == "héllo".encode()
    assert result["bytes"] == "héllo"
    assert result["tree"] == [
        "in", "in/tree", "in/tree/a.txt", "in/tree/sub", "in/tree/sub/b.txt",
    ]  # fmt: skip
    assert result["treeB"] == "b"


def test_download_directory_refuses_keys_that_escape(
    node: str, node_modules: Path, fake_s3: FakeServer, tmp_path: Path
) -> None:
    fake_s3.objects["bkt", "evil/../../escaped.txt"] = b"x"
    result = run_node(
        node,
        """
        const { storage } = require(process.env.STORAGE_JS);
        storage.get_instance().download_directory('bkt', 'evil/', process.env.TARGET)
          .then(() => console.log(JSON.stringify('no error')))
          .catch((err) => console.log(JSON.stringify(err.message)));
        """,
        NODE_PATH=str(node_modules),
        MINIO_ADDRESS=fake_s3.address,
        MINIO_ACCESS_KEY="key",
        MINIO_SECRET_KEY="secret",
        TARGET=str(tmp_path / "target"),
    )
    assert "escapes the directory" in result
    assert not (tmp_path / "escaped.txt").exists()


class _FakeDynamoDB(_FakeHTTP):
    """Records each DynamoDB JSON call and answers from a canned table of replies."""

    REPLIES: ClassVar[dict[str, list[dict[str, Any]]]] = {
        "PutItem": [{}],
        "GetItem": [
            {
                "Item": {
                    "cart_id": {"S": "c1"},
                    "product_id": {"S": "p1"},
                    "price": {"N": "3.5"},
                    "quantity": {"N": "2"},
                    "tags": {"L": [{"S": "new"}]},
                }
            }
        ],
        "UpdateItem": [{}],
        "Query": [  # two pages: the helper must follow LastEvaluatedKey
            {
                "Items": [{"name": {"S": "soap"}, "price": {"N": "1"}}],
                "LastEvaluatedKey": {"cart_id": {"S": "c1"}, "product_id": {"S": "p1"}},
            },
            {"Items": [{"name": {"S": "towel"}, "price": {"N": "2"}}]},
        ],
        "DeleteItem": [{}],
    }

    def do_POST(self) -> None:
        operation = self.headers["X-Amz-Target"].rpartition(".")[2]
        calls = sum(1 for name, _ in self.server.requests if name == operation)
        self.server.requests.append((operation, json.loads(self.body())))
        reply = self.REPLIES[operation][calls % len(self.REPLIES[operation])]
        self.reply(200, json.dumps(reply).encode(), Content_Type="application/x-amz-json-1.0")


def test_nosql_calls_with_aws_sdk(node: str, node_modules: Path) -> None:
    server = FakeServer(_FakeDynamoDB)
    try:
        result = run_node(
            node,
            """
            const { nosql } = require(process.env.NOSQL_JS);
            const db = nosql.get_instance();
            const cart = ['cart_id', 'c1'];
            const product = ['product_id', 'p1'];
            (async () => {
              const out = {};
              const data = { price: 3.5, quantity: 2, name: 'soap' };
              out.inserted = await db.insert('shopping_cart', cart, product, data);
              out.dataUntouched = Object.keys(data);
              out.got = await db.get('shopping_cart', cart, product);
              await db.update('shopping_cart', cart, product, { status: 'sold', 'odd-name': 1 });
              await db.update('shopping_cart', cart, product, {}); // nothing to send
              out.queried = await db.query('shopping_cart', cart, 'product_id');
              await db.delete('shopping_cart', cart, product);
              try {
                await db.get('no_such_table', cart, product);
              } catch (err) {
                out.missing = err.message;
              }
              console.log(JSON.stringify(out));
            })().catch((err) => { console.error(err.stack); process.exit(1); });
            """,
            NODE_PATH=str(node_modules),
            NOSQL_STORAGE_TYPE="scylladb",
            NOSQL_STORAGE_ENDPOINT=server.address,
            NOSQL_STORAGE_TABLE_shopping_cart="sebs-130-shopping_cart",
        )
    finally:
        server.stop()

    assert "inserted" not in result  # resolves to undefined, as SeBS's
    assert result["dataUntouched"] == ["price", "quantity", "name"]
    assert result["got"] == {
        "cart_id": "c1", "product_id": "p1", "price": 3.5, "quantity": 2, "tags": ["new"],
    }  # fmt: skip
    assert result["queried"] == [{"name": "soap", "price": 1}, {"name": "towel", "price": 2}]
    assert result["missing"] == (
        "Couldn't find an environment variable NOSQL_STORAGE_TABLE_no_such_table"
        " for table no_such_table"
    )

    operations = [name for name, _ in server.requests]
    assert operations == ["PutItem", "GetItem", "UpdateItem", "Query", "Query", "DeleteItem"]
    calls = [body for _, body in server.requests]
    assert all(body["TableName"] == "sebs-130-shopping_cart" for body in calls)
    key = {"cart_id": {"S": "c1"}, "product_id": {"S": "p1"}}
    put, get, update, query1, query2, delete = calls
    assert put["Item"] == {
        "price": {"N": "3.5"}, "quantity": {"N": "2"}, "name": {"S": "soap"}, **key,
    }  # fmt: skip
    assert get["Key"] == key
    assert update["Key"] == key
    assert update["UpdateExpression"] == "SET #a0 = :v0, #a1 = :v1"
    assert update["ExpressionAttributeNames"] == {"#a0": "status", "#a1": "odd-name"}
    assert update["ExpressionAttributeValues"] == {":v0": {"S": "sold"}, ":v1": {"N": "1"}}
    assert query1["KeyConditionExpression"] == "#k = :k"
    assert query1["ExpressionAttributeNames"] == {"#k": "cart_id"}
    assert query1["ExpressionAttributeValues"] == {":k": {"S": "c1"}}
    assert "ExclusiveStartKey" not in query1
    assert query2["ExclusiveStartKey"] == key
    assert delete["Key"] == key


# Last, so that in a full run the idle time has passed already.
def test_idle_kept_alive_connection_outlives_nodes_default_timeout(
    shared_and_idle: tuple[Runtime, IdleConnection],
) -> None:
    # Node closes a connection idle for 5 s by default; the host keeps one
    # connection per instance and would race that close on its next call.
    _, idle = shared_and_idle
    idle_s = 5.5
    wait_for(lambda: time.monotonic() - idle.since > idle_s, "the idle time", idle_s + 1)
    sock = idle.conn.sock
    idle.conn.request("POST", "/", body=b"{}")
    assert idle.conn.getresponse().status == 200
    assert idle.conn.sock is sock  # not silently reconnected
