"""faaslab function runtime: a small HTTP server around one SeBS-style function.

Runs as ``python3 /opt/faaslab/server.py`` inside a function container and uses
the standard library only. It serves

- ``GET /alive`` → 200 ``{"status": "ok", "instance": ..., "pid": ...}``;
- ``POST /`` with the event as a JSON object → 200 ``{"begin", "end",
  "request_id", "is_cold", "result": {"output": <handler return>},
  "compute_time_us", "instance"}`` (SeBS's shape plus the last two fields);
  500 with ``"error": {"type", "message", "traceback"}`` instead of
  ``"result"`` when the handler raises or returns something that is not JSON;
  400 when the body is not a JSON object; 404/405 for other paths/methods.

Environment: ``FAASLAB_HOST`` (default ``0.0.0.0``), ``FAASLAB_PORT`` (default
``8080``; ``0`` picks a free port, which the ready line names),
``FAASLAB_INSTANCE`` (default: the hostname), ``FAASLAB_CODE_DIR`` (default
``/function``). The function is the package ``<CODE_DIR>/function/`` (its
``function.py`` defines ``handler``); ``<CODE_DIR>/.python_packages/lib/
site-packages`` holds its installed requirements. The SeBS helpers beside
this file, ``storage.py`` and ``nosql.py``, are offered as the submodules
``function.storage`` and ``function.nosql`` unless the function ships its own.

Exit status: 0 after SIGTERM or SIGINT; 1 when the function cannot be imported
or has no callable ``handler`` (the traceback goes to stderr, i.e. the
container log), so the host sees the failure at once instead of timing out.
"""

from __future__ import annotations

import http.server
import importlib
import importlib.machinery
import importlib.util
import io
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

Handler = Callable[[dict[str, Any]], Any]

PACKAGE = "function"
#: SeBS's helpers, offered as ``function.<name>`` (``from . import storage``).
HELPERS = ("storage", "nosql")

# Built once: encoding is on the hot path. allow_nan=False because NaN and
# Infinity are not JSON and would fail in the host's decoder instead of here.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def load_handler(code_dir: Path) -> Handler:
    """Import ``<code_dir>/function/function.py`` as ``function.function``; return its handler."""
    site_packages = code_dir / ".python_packages" / "lib" / "site-packages"
    if site_packages.is_dir():
        # After the standard library but before the image's own packages, so the
        # function's pinned requirements win over whatever the image carries.
        position = next(
            (i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))),
            len(sys.path),
        )
        sys.path.insert(position, str(site_packages))

    package_dir = code_dir / PACKAGE
    init = package_dir / "__init__.py"
    spec: importlib.machinery.ModuleSpec | None
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            PACKAGE, init, submodule_search_locations=[str(package_dir)]
        )
    else:
        # SeBS functions have no __init__.py. An explicit package spec (rather
        # than a namespace package found through sys.path) makes relative
        # imports work and cannot be shadowed by another "function" on the path.
        spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
        spec.submodule_search_locations = [str(package_dir)]
    if spec is None:
        raise ImportError(f"cannot build a package from {package_dir}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    # Registered before the package's own code runs, so that an __init__.py may
    # already say `from . import storage`.
    for helper in HELPERS:
        if not (package_dir / f"{helper}.py").exists():
            _register_helper(package, helper)
    if spec.loader is not None:
        spec.loader.exec_module(package)

    module = importlib.import_module(f"{PACKAGE}.function")
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise TypeError(f"{package_dir / 'function.py'} defines no callable `handler(event)`")
    return handler  # type: ignore[no-any-return]


def _register_helper(package: ModuleType, helper_name: str) -> None:
    """Make ``from . import <helper>`` find SeBS's helper without touching the read-only code."""
    path = Path(__file__).with_name(f"{helper_name}.py")
    if not path.is_file():
        print(
            f"faaslab: {path} is missing; `from . import {helper_name}` will fail",
            file=sys.stderr,
        )
        return
    name = f"{PACKAGE}.{helper_name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    helper = importlib.util.module_from_spec(spec)
    sys.modules[name] = helper
    spec.loader.exec_module(helper)
    # `from . import storage` looks at the package attribute first.
    vars(package)[helper_name] = helper


def _describe(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


class Runtime:
    """The loaded function and what all connections share: the lock and coldness."""

    def __init__(self, handler: Handler, instance: str) -> None:
        self.handler = handler
        self.instance = instance
        # One invocation at a time per instance by default, like a real FaaS
        # sandbox; FAASLAB_CONCURRENCY (the function's `concurrency`) allows more.
        self.lock = threading.BoundedSemaphore(
            max(1, int(os.environ.get("FAASLAB_CONCURRENCY", "1") or 1))
        )
        self.cold = True
        self.alive_body = _encode(
            {"status": "ok", "instance": instance, "pid": os.getpid()}
        ).encode()

    def invoke(self, event: dict[str, Any]) -> tuple[int, bytes]:
        """Call the handler once; return the HTTP status and the JSON body."""
        request_id = str(uuid.uuid4())
        with self.lock:
            # A failing first call still was the cold one.
            is_cold, self.cold = self.cold, False
            error: BaseException | None = None
            output: Any = None
            begin = time.time()
            start = time.perf_counter_ns()
            try:
                output = self.handler(event)
            # SystemExit too: sys.exit() in a handler must fail the call, not
            # silently end the connection's thread.
            except (Exception, SystemExit) as exc:
                error = exc
            stop = time.perf_counter_ns()
            end = time.time()
            record: dict[str, Any] = {
                "begin": f"{begin:.6f}",
                "end": f"{end:.6f}",
                "request_id": request_id,
                "is_cold": is_cold,
            }
            timing = {"compute_time_us": (stop - start) // 1000, "instance": self.instance}
            prefix = ""
            if error is None:
                try:
                    # Encoded under the lock: the output may be state that the
                    # next invocation mutates.
                    return 200, _encode({**record, "result": {"output": output}, **timing}).encode()
                except Exception as exc:  # TypeError, or ValueError for NaN and cycles
                    error, prefix = exc, "handler result is not JSON-serialisable: "
        details = _describe(error)
        details["message"] = prefix + details["message"]
        print(f"faaslab: invocation {request_id} failed\n{details['traceback']}", file=sys.stderr)
        return 500, _encode({"error": details, **record, **timing}).encode()


_ROUTES = {"/": "POST", "/alive": "GET"}  # path -> the one method it accepts


class RuntimeServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Thread per connection, so a health probe is never stuck behind a kept-alive connection.

    Built on TCPServer rather than http.server.HTTPServer, whose server_bind
    does a reverse DNS lookup (getfqdn) that can stall startup in a container.
    """

    daemon_threads = True  # idle kept-alive connections must not delay exit
    allow_reuse_address = True
    request_queue_size = 128  # the host may open many connections at once

    def __init__(self, address: tuple[str, int], runtime: Runtime) -> None:
        self.runtime = runtime
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)


class RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the host reuses one connection per instance
    disable_nagle_algorithm = True  # TCP_NODELAY on accepted sockets (StreamRequestHandler.setup)
    server: RuntimeServer

    def dispatch(self) -> None:
        body = self._read_body()  # always consumed, so the connection stays usable
        if body is None:
            return
        path = self.path.partition("?")[0]
        allowed = _ROUTES.get(path)
        if allowed is None:
            self._error(404, "NotFound", f"no such path: {path}")
        elif self.command != allowed and not (self.command == "HEAD" and allowed == "GET"):
            self._error(405, "MethodNotAllowed", f"{path} accepts {allowed} only", allow=allowed)
        elif path == "/alive":
            self._reply(200, self.server.runtime.alive_body)
        else:
            self._invoke(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = dispatch

    def _invoke(self, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            self._error(400, "BadRequest", f"the body is not JSON: {exc}")
            return
        if not isinstance(event, dict):
            self._error(
                400, "BadRequest", f"the event must be a JSON object, not {type(event).__name__}"
            )
            return
        self._reply(*self.server.runtime.invoke(event))

    def _read_body(self) -> bytes | None:
        """The request body, or None after replying 400 to a malformed one.

        Malformed framing closes the connection: where the next request starts
        is unknown.
        """
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunks()
            size = int(self.headers.get("Content-Length", 0))
            if size < 0:
                raise ValueError(f"negative Content-Length: {size}")
            return self.rfile.read(size)
        except ValueError as exc:
            self.close_connection = True
            self._error(400, "BadRequest", f"malformed request body: {exc}")
            return None

    def _read_chunks(self) -> bytes:
        # Clients streaming a body without a known length (http.client with a
        # generator, curl -T -) send it chunked.
        parts = []
        while size := int(self.rfile.readline(1024).split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk
        while self.rfile.readline(1024).strip():  # trailer fields, up to the blank line
            pass
        return b"".join(parts)

    def _error(self, status: int, kind: str, message: str, allow: str | None = None) -> None:
        body = _encode({"error": {"type": kind, "message": message}}).encode()
        self._reply(status, body, f"Allow: {allow}\r\n" if allow else "")

    def _reply(self, status: int, body: bytes, extra_headers: str = "") -> None:
        # Head and body in one write (one packet for small replies), and none
        # of send_response's Date/Server headers or access logging.
        if self.close_connection:
            extra_headers += "Connection: close\r\n"
        head = (
            f"HTTP/1.1 {status} {self.responses[status][0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{extra_headers}\r\n"
        )
        self.wfile.write(head.encode("latin-1") + (b"" if self.command == "HEAD" else body))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: it would cost time on every request. Errors are still logged."""


class _Shutdown(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to leave serve_forever at once.

    A BaseException, because socketserver swallows Exceptions raised while it
    hands a connection to a thread.
    """


def _shutdown(signum: int, frame: FrameType | None) -> None:
    raise _Shutdown(signum)


def main() -> int:
    host = os.environ.get("FAASLAB_HOST", "0.0.0.0")
    port = int(os.environ.get("FAASLAB_PORT", "8080"))
    instance = os.environ.get("FAASLAB_INSTANCE") or socket.gethostname()
    code_dir = Path(os.environ.get("FAASLAB_CODE_DIR", "/function"))
    if isinstance(sys.stdout, io.TextIOWrapper):
        # stdout is a pipe in a container: without this, a function's prints
        # reach the container log only when the buffer fills.
        sys.stdout.reconfigure(line_buffering=True)

    # Import before listening: a broken function must never look alive.
    try:
        handler = load_handler(code_dir)
    except Exception:
        print(f"faaslab: cannot load the function in {code_dir / PACKAGE}:", file=sys.stderr)
        traceback.print_exc()
        return 1

    server = RuntimeServer((host, port), Runtime(handler, instance))
    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    bound = server.server_address[1]
    print(
        f"faaslab runtime ready on http://{host}:{bound} (instance {instance}, pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except _Shutdown:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
