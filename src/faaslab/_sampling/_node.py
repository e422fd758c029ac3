"""The node sampler: the sampling worker of one Swarm node, served over TCP.

Run as ``python -m faaslab._sampling._node`` in every task of a deployment's
global sampler service, with the host's ``/sys/fs/cgroup`` mounted read-only
at ``FAASLAB_CGROUP_ROOT`` and the deployment's token in the secret file
``FAASLAB_SAMPLER_TOKEN_FILE``. It listens on ``FAASLAB_SAMPLER_PORT`` (of
``FAASLAB_SAMPLER_LISTEN``, every address of its task by default). A
connection that does not open with the token and a newline is closed. Each
accepted connection gets its own sampling worker (``_worker``, unchanged, a
child process) and is bridged to it frame by frame, with one addition:
a ``Register`` whose path is ``container:<id>`` is resolved here to that
container's cgroup memory file on this node (the deployment takes container
ids from the Swarm task list; only the node can see its cgroups), or
answered with ``Refused``. Only the standard library, msgspec and the
sampling modules run here (the image holds nothing else of faaslab).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import sys
from pathlib import Path

from .._errors import SamplingError
from ._cgroup import find_memory_files
from ._protocol import (
    FRAME_HEADER,
    FrameReader,
    Refused,
    Register,
    decode_command,
    encode_frame,
)

__all__ = ("main",)

CONTAINER_PATH = "container:"
#: A client has this long to present the token.
AUTH_TIMEOUT_S = 10.0


def resolve(path: str, cgroup_root: Path) -> str:
    """The memory file a Register path names on this node."""
    if not path.startswith(CONTAINER_PATH):
        return path
    container_id = path.removeprefix(CONTAINER_PATH)
    return find_memory_files(None, container_id=container_id, cgroup_root=cgroup_root).usage


async def _downstream(worker: asyncio.subprocess.Process, writer: asyncio.StreamWriter) -> None:
    """Worker frames to the client, whole frames only (Refused frames go in between)."""
    assert worker.stdout is not None
    frames = FrameReader()
    while data := await worker.stdout.read(1 << 20):
        for body in frames.feed(data):
            writer.write(FRAME_HEADER.pack(len(body)) + body)
        await writer.drain()


async def _upstream(
    reader: asyncio.StreamReader,
    worker: asyncio.subprocess.Process,
    writer: asyncio.StreamWriter,
    cgroup_root: Path,
) -> None:
    """Client commands to the worker, container paths resolved; EOF stops the worker."""
    assert worker.stdin is not None
    frames = FrameReader()
    try:
        while data := await reader.read(65536):
            for body in frames.feed(data):
                command = decode_command(body)
                if isinstance(command, Register):
                    try:
                        path = await asyncio.to_thread(resolve, command.path, cgroup_root)
                    except SamplingError as exc:
                        writer.write(encode_frame(Refused(key=command.key, error=str(exc))))
                        continue
                    command = Register(key=command.key, path=path, interval_ns=command.interval_ns)
                worker.stdin.write(encode_frame(command))
                await worker.stdin.drain()
    except (ConnectionError, ValueError):
        pass
    finally:
        worker.stdin.close()


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: bytes, cgroup_root: Path
) -> None:
    try:
        presented = await asyncio.wait_for(reader.readexactly(len(token) + 1), AUTH_TIMEOUT_S)
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        writer.close()
        return
    if not hmac.compare_digest(presented, token + b"\n"):
        print("node sampler: a connection without the token was closed", file=sys.stderr)
        writer.close()
        return
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faaslab._sampling._worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.gather(
            _upstream(reader, worker, writer, cgroup_root), _downstream(worker, writer)
        )
    except ConnectionError:
        pass
    finally:
        if worker.returncode is None:
            try:
                await asyncio.wait_for(worker.wait(), 5)
            except TimeoutError:
                worker.kill()
                await worker.wait()
        writer.close()


async def _main() -> None:
    token = Path(os.environ["FAASLAB_SAMPLER_TOKEN_FILE"]).read_bytes().strip()
    port = int(os.environ.get("FAASLAB_SAMPLER_PORT", "7070"))
    cgroup_root = Path(os.environ.get("FAASLAB_CGROUP_ROOT", "/sys/fs/cgroup"))
    # Every address of its task's own network namespace (the overlay, the gateway's way in).
    listen = os.environ.get("FAASLAB_SAMPLER_LISTEN", "0.0.0.0")
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, token, cgroup_root), listen, port, reuse_address=True
    )
    print(f"node sampler: listening on {port}, cgroups at {cgroup_root}", file=sys.stderr)
    async with server:
        await server.serve_forever()


def main() -> int:
    asyncio.run(_main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
