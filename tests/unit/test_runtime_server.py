"""The in-container runtime server, run as a subprocess on the host (127.0.0.1 only)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import faaslab.runtimes.python

SERVER = Path(faaslab.runtimes.python.__file__).with_name("server.py")
HELPER = SERVER.with_name("storage.py")
READY = re.compile(r"faaslab runtime ready on http://127\.0\.0\.1:(\d+)")
DEADLINE_S = 15.0

FULL_FUNCTION = {
    "function/function.py": """
        import sys
        import time
        from pathlib import Path

        import extpkg  # from .python_packages/lib/site-packages

        from . import helper, storage


        def handler(event):
            action = event.get("action")
            if action == "sleep":
                if "marker" in event:
                    Path(event["marker"]).touch()
                time.sleep(event["seconds"])
            elif action == "raise":
                raise ValueError(event.get("message", "boom"))
            elif action == "unserialisable":
                return {"value": {1, 2}}
            elif action == "nan":
                return {"value": float("nan")}
            elif action == "exit":
                sys.exit(3)
            elif action == "storage":
                return {
                    "name": storage.__name__,
                    "file": storage.__file__,
                    "get_instance": callable(storage.storage.get_instance),
                    "minio_imported": "minio" in sys.modules,
                }
            return {"echo": event, "helper": helper.VALUE, "extpkg": extpkg.VALUE}
    """,
    "function/helper.py": 'VALUE = "from a sibling module"\n',
    ".python_packages/lib/site-packages/extpkg/__init__.py": 'VALUE = "from site-packages"\n',
}


class Runtime:
    """One server.py subprocess and a few ways to talk to it."""

    def __init__(self, code_dir: Path, instance: str | None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FAASLAB_", "MINIO_"))}
        env.update(
            FAASLAB_HOST="127.0.0.1",
            FAASLAB_PORT="0",  # the kernel picks a free port; the ready line names it
            FAASLAB_CODE_DIR=str(code_dir),
            PYTHONDONTWRITEBYTECODE="1",
        )
        if instance is not None:
            env["FAASLAB_INSTANCE"] = instance
        self.stderr_path = code_dir.parent / f"{code_dir.name}.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(SERVER)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.port = 0

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self) -> Runtime:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if match := READY.search(self.stderr()):
                self.port = int(match[1])
                status, body = self.request("GET", "/alive")
                assert status == 200, body
                return self
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.stderr()}")
            time.sleep(0.01)
        pytest.fail(f"server not ready after {DEADLINE_S} s:\n{self.stderr()}")

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
        conn = self.connect()
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def invoke(self, event: Any) -> tuple[int, dict[str, Any]]:
        return self.request("POST", "/", json.dumps(event).encode())


class Launcher:
    """Writes code directories and starts runtimes; stop_all() kills whatever is left."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runtimes: list[Runtime] = []

    def spawn(self, files: dict[str, str], instance: str | None = "test-instance") -> Runtime:
        code_dir = self.root / f"code-{len(self.runtimes)}"
        for relative, text in files.items():
            path = code_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        (code_dir / "function").mkdir(parents=True, exist_ok=True)
        runtime = Runtime(code_dir, instance)
        self.runtimes.append(runtime)
        return runtime

    def stop_all(self) -> None:
        for runtime in self.runtimes:
            runtime.stop()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """One server for the tests that do not care about coldness or process exit."""
    launcher = Launcher(tmp_path_factory.mktemp("runtime"))
    try:
        yield launcher.spawn(FULL_FUNCTION).wait_ready()
    finally:
        launcher.stop_all()


def test_alive_names_instance_and_pid(shared: Runtime) -> None:
    status, body = shared.request("GET", "/alive")
    assert (status, body) == (
        200,
        {"status": "ok", "instance": "test-instance", "pid": shared.proc.pid},
    )


def test_invocation_response_shape(shared: Runtime) -> None:
    status, body = shared.invoke({"x": [1, "two"]})
    assert status == 200
    assert set(body) == {
        "begin", "end", "request_id", "is_cold", "result", "compute_time_us", "instance",
    }  # fmt: skip
    assert re.fullmatch(r"\d+\.\d{6}", body["begin"])
    assert re.fullmatch(r"\d+\.\d{6}", body["end"])
    assert uuid.UUID(body["request_id"]).version == 4
    assert isinstance(body["is_cold"], bool)
    assert isinstance(body["compute_time_us"], int)
    assert body["instance"] == "test-instance"
    assert body["result"] == {
        "output": {
            "echo": {"x": [1, "two"]},
            "helper": "from a sibling module",
            "extpkg": "from site-packages",
        }
    }
    assert abs(float(body["begin"]) - time.time()) < 60


def test_relative_import_and_site_packages(shared: Runtime) -> None:
    _, body = shared.invoke({})
    output = body["result"]["output"]
    assert output["helper"] == "from a sibling module"
    assert output["extpkg"] == "from site-packages"


def test_timing_of_a_sleeping_handler(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "sleep", "seconds": 0.05})
    assert status == 200
    begin, end, compute_us = float(body["begin"]), float(body["end"]), body["compute_time_us"]
    assert begin <= end
    assert 50_000 <= compute_us < 1_000_000
    # Both clocks bracket the same call: they agree within a few milliseconds.
    assert abs((end - begin) * 1e6 - compute_us) < 5_000


def test_handler_error_is_500_and_server_keeps_serving(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "raise", "message": "no such image"})
    assert status == 500
    assert set(body) >= {"error", "begin", "end", "request_id", "is_cold", "instance"}
    assert "result" not in body
    error = body["error"]
    assert error["type"] == "ValueError"
    assert error["message"] == "no such image"
    assert "function.py" in error["traceback"]
    assert error["traceback"].rstrip().endswith("ValueError: no such image")
    assert "no such image" in shared.stderr()  # also in the container log

    status, body = shared.invoke({"after": "error"})
    assert status == 200
    assert body["result"]["output"]["echo"] == {"after": "error"}


@pytest.mark.parametrize(
    ("action", "error_type"), [("unserialisable", "TypeError"), ("nan", "ValueError")]
)
def test_result_that_is_not_json_is_an_error(shared: Runtime, action: str, error_type: str) -> None:
    status, body = shared.invoke({"action": action})
    assert status == 500
    assert body["error"]["type"] == error_type
    assert "not JSON-serialisable" in body["error"]["message"]
    assert shared.invoke({})[0] == 200


def test_sys_exit_in_handler_fails_the_call_only(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "exit"})
    assert status == 500
    assert body["error"]["type"] == "SystemExit"
    assert shared.invoke({})[0] == 200


@pytest.mark.parametrize(
    "body", [b"not json", b"", b"\xff\xfe{", b"[1, 2]", b'"a string"', b"42", b"null"]
)
def test_body_that_is_not_a_json_object_is_400(shared: Runtime, body: bytes) -> None:
    status, reply = shared.request("POST", "/", body)
    assert status == 400
    assert reply["error"]["type"] == "BadRequest"
    assert reply["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("POST", "/nope", 404),
        ("GET", "/", 405),
        ("PUT", "/", 405),
        ("DELETE", "/", 405),
        ("POST", "/alive", 405),
    ],
)
def test_unknown_path_and_wrong_method(
    shared: Runtime, method: str, path: str, status: int
) -> None:
    got, body = shared.request(method, path, b"{}")
    assert got == status
    assert body["error"]["type"] in {"NotFound", "MethodNotAllowed"}


def test_keep_alive_reuses_one_connection(shared: Runtime) -> None:
    conn = shared.connect()
    try:
        request_ids = []
        sockets = []
        for i in range(3):
            conn.request("POST", "/", body=json.dumps({"i": i}).encode())
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Connection") is None  # not "close"
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
        deadline = time.monotonic() + DEADLINE_S
        while not marker.exists():
            assert time.monotonic() < deadline, "the slow invocation never started"
            time.sleep(0.005)
        start = time.monotonic()
        assert shared.request("GET", "/alive")[0] == 200
        assert time.monotonic() - start < 0.5
        assert not slow  # the probe really overlapped the invocation
    finally:
        thread.join(DEADLINE_S)
    assert slow == [200]


def test_invocations_run_one_at_a_time(shared: Runtime) -> None:
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(shared.invoke({"action": "sleep", "seconds": 0.1})[1])
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
    first, second = sorted(results, key=lambda body: float(body["begin"]))
    assert float(first["end"]) <= float(second["begin"])


def test_storage_helper_is_function_storage(shared: Runtime) -> None:
    status, body = shared.invoke({"action": "storage"})
    assert status == 200
    output = body["result"]["output"]
    assert output["name"] == "function.storage"
    assert Path(output["file"]).resolve() == HELPER.resolve()
    assert output["get_instance"] is True
    assert output["minio_imported"] is False  # imported only when a client is built


def test_is_cold_exactly_once_even_when_first_call_fails(launcher: Launcher) -> None:
    runtime = launcher.spawn(FULL_FUNCTION, instance=None).wait_ready()
    statuses, colds = [], []
    for event in ({"action": "raise"}, {}, {}):
        status, body = runtime.invoke(event)
        statuses.append(status)
        colds.append(body["is_cold"])
    assert statuses == [500, 200, 200]
    assert colds == [True, False, False]
    # Without FAASLAB_INSTANCE the instance is the hostname (the container id in Docker).
    assert body["instance"] == socket.gethostname()


@pytest.mark.parametrize("own_storage", [False, True])
def test_package_init_and_own_storage(launcher: Launcher, own_storage: bool) -> None:
    files = {
        # The package's own __init__ runs and may already use the helper.
        "function/__init__.py": "from . import storage as _storage\nINIT_RAN = True\n",
        "function/function.py": """
            from . import INIT_RAN, storage

            def handler(event):
                return {"init": INIT_RAN, "mark": getattr(storage, "MARK", "helper")}
        """,
    }
    if own_storage:
        files["function/storage.py"] = 'MARK = "own"\n'
    runtime = launcher.spawn(files).wait_ready()
    _, body = runtime.invoke({})
    assert body["result"]["output"] == {"init": True, "mark": "own" if own_storage else "helper"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('raise RuntimeError("broken at import")\n', "RuntimeError: broken at import"),
        ("import no_such_module_xyz\n", "No module named 'no_such_module_xyz'"),
        ("def other(event):\n    return {}\n", "defines no callable `handler(event)`"),
        ("handler = 42\n", "defines no callable `handler(event)`"),
        (None, "No module named 'function.function'"),
    ],
)
def test_broken_function_exits_1_before_listening(
    launcher: Launcher, source: str | None, expected: str
) -> None:
    files = {} if source is None else {"function/function.py": source}
    runtime = launcher.spawn(files)
    assert runtime.wait_exit() == 1
    stderr = runtime.stderr()
    assert "faaslab: cannot load the function" in stderr
    assert "Traceback (most recent call last)" in stderr
    assert expected in stderr
    assert "ready" not in stderr


def test_sigterm_exits_0_promptly_with_a_kept_alive_connection(launcher: Launcher) -> None:
    runtime = launcher.spawn(FULL_FUNCTION).wait_ready()
    conn = runtime.connect()
    try:
        conn.request("POST", "/", body=b"{}")
        assert conn.getresponse().read()  # the connection now idles, kept alive
        start = time.monotonic()
        runtime.proc.send_signal(signal.SIGTERM)
        assert runtime.wait_exit() == 0
        # < 1 s is the target; the margin absorbs a loaded 2-core machine.
        assert time.monotonic() - start < 2.0
    finally:
        conn.close()


def test_head_alive_has_no_body_and_keeps_the_connection(shared: Runtime) -> None:
    conn = shared.connect()
    try:
        conn.request("HEAD", "/alive")
        response = conn.getresponse()
        assert response.status == 200
        assert int(response.getheader("Content-Length", "0")) > 0
        assert response.read() == b""
        conn.request("POST", "/", body=b"{}")
        assert conn.getresponse().status == 200
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
    with socket.create_connection(("127.0.0.1", shared.port), timeout=DEADLINE_S) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):  # ends when the server closes the connection
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in head
    assert json.loads(body)["error"]["type"] == "BadRequest"
