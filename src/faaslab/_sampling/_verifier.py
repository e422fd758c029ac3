"""The host sampler's access checker: ``python -m faaslab._sampling._verifier``.

A child of the host sampler (``_hostd``), at normal priority: it asks the
engine about containers (through the :class:`~faaslab._backend.Backend`
Protocol), which takes an event loop, aiohttp and milliseconds of Python
work per answer: none of that may share a process (a GIL) with the
real-time reads. It reads :class:`~._access.AccessRequest` frames on stdin
and answers each with a :class:`~._access.Verdict` frame on stdout, as soon
as it is decided (requests are checked concurrently); the decisions
themselves are the pure functions of ``_access``. It exits when its stdin
closes (its sampler is gone).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable

import anyio
import msgspec
import structlog
from anyio.streams.file import FileReadStream, FileWriteStream

from .._backend import Backend, open_engine
from .._errors import FaaslabError
from .._logging import configure_logging
from ._access import AccessRequest, Verdict, check_container, check_path
from ._cgroup import MemoryFiles, find_memory_files
from ._loop import Outbox
from ._protocol import FrameReader, encode_frame

__all__ = ("CheckerProcess", "check", "main")

log = structlog.get_logger()

#: Bound on one check (an engine answer, a /proc read).
CHECK_TIMEOUT_S = 20.0

_decoder = msgspec.msgpack.Decoder(AccessRequest)
_READ_SIZE = 1024 * 1024

FindFiles = Callable[[int, str], MemoryFiles]


def _find_files(pid: int, container: str) -> MemoryFiles:
    return find_memory_files(pid, container_id=container)


async def check(
    request: AccessRequest, engine: Backend, find_files: FindFiles = _find_files
) -> Verdict:
    """Decide one request against a live engine and this host's cgroup files."""
    short = request.container[:12]
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            document = await engine.inspect_container(request.container) if short else None
            error, pid = check_container(request, document)
            if error:
                return Verdict(request=request.request, error=error)
            files = await anyio.to_thread.run_sync(find_files, pid, request.container)
            usage = os.path.realpath(files.usage)
            requested = os.path.realpath(request.path) if request.path else ""
    except TimeoutError:
        error = f"cannot check container {short}: no answer within {CHECK_TIMEOUT_S:g} s"
        return Verdict(request=request.request, error=error)
    except (FaaslabError, OSError) as exc:
        return Verdict(request=request.request, error=f"cannot check container {short}: {exc}")
    error = check_path(requested, usage)
    if error:
        return Verdict(request=request.request, error=error)
    return Verdict(request=request.request, usage=usage, peak=files.peak)


class _Engines:
    """One connection per engine endpoint, opened on first use."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self._stack = stack
        self._engines: dict[str, Backend] = {}
        self._lock = anyio.Lock()

    async def get(self, endpoint: str) -> Backend:
        async with self._lock:
            engine = self._engines.get(endpoint)
            if engine is None:
                engine = await self._stack.enter_async_context(open_engine(endpoint or None))
                self._engines[endpoint] = engine
            return engine


class CheckerProcess:
    """The host sampler's handle on this process: requests out, verdicts in.

    Used from the real-time loop: nothing here blocks but :meth:`stop`.
    """

    def __init__(self, command: list[str]) -> None:
        self._command = command
        self._process: subprocess.Popen[bytes] | None = None
        self.outbox: Outbox | None = None
        self._reader = FrameReader()
        self._decoder = msgspec.msgpack.Decoder(Verdict)

    @property
    def out_fd(self) -> int | None:
        process = self._process
        return process.stdout.fileno() if process is not None and process.stdout else None

    def start(self) -> None:
        # Our scheduling has SCHED_RESET_ON_FORK: the checker runs at normal priority.
        self._process = subprocess.Popen(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
        )
        assert self._process.stdin is not None
        self.outbox = Outbox(self._process.stdin.fileno(), overflow="drop")
        self._reader = FrameReader()
        log.info("sampler.checker_started", pid=self._process.pid)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ask(self, request: AccessRequest) -> None:
        if self._process is None:
            self.start()
        assert self.outbox is not None
        self.outbox.pending += encode_frame(request)
        self.outbox.write_some()

    def read(self) -> list[Verdict] | None:
        """Verdicts that arrived; None when the checker is gone."""
        fd = self.out_fd
        assert fd is not None
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return []
        if not data:
            self.stop()
            return None
        return [self._decoder.decode(body) for body in self._reader.feed(data)]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _serve() -> None:
    stdout = FileWriteStream(os.fdopen(os.dup(1), "wb", buffering=0))
    os.dup2(2, 1)  # a stray print must not corrupt the frames
    stdin = FileReadStream(os.fdopen(os.dup(0), "rb", buffering=0))
    write_lock = anyio.Lock()
    reader = FrameReader()

    async def answer(request: AccessRequest, engines: _Engines) -> None:
        try:
            engine = await engines.get(request.engine)
        except FaaslabError as exc:
            verdict = Verdict(request=request.request, error=f"cannot reach the engine: {exc}")
        else:
            verdict = await check(request, engine)
        log.info(
            "sampler.access_checked",
            deployment=request.deployment,
            container=request.container[:12],
            allowed=not verdict.error,
            error=verdict.error or None,
        )
        async with write_lock:
            await stdout.send(encode_frame(verdict))

    async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
        engines = _Engines(stack)
        async for chunk in stdin:
            for body in reader.feed(chunk):
                tg.start_soon(answer, _decoder.decode(body), engines)
        tg.cancel_scope.cancel()  # our sampler is gone: nobody reads answers


def main() -> int:
    configure_logging("json", debug=False)
    anyio.run(_serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
