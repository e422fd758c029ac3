"""The gateway: how the host reaches tasks on an overlay network without the mesh.

Swarm publishes a service's ports on every interface of a node (the ingress
mesh, or host mode): never what faaslab wants on one machine. A standalone
container on the engine faaslab talks to can join the deployment's
*attachable* overlay and publish a port on one address only (127.0.0.1 by
default). That container runs :data:`FORWARDER`, a few lines of stdlib
asyncio that pass every TCP connection on to one target on the overlay (a
service name, which Docker's DNS resolves to its task, or a task address).
One gateway per target keeps the mapping as dynamic as the instances are:
it is created with its instance and removed with it.

The forwarder runs on the runtime image's Python, passed with ``-c``: no
file of the host is mounted, so it works whatever host the engine is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ("FORWARDER", "GATEWAY_PORT", "gateway_config")

#: The port the forwarder listens on inside its container.
GATEWAY_PORT = 8080

#: ``python3 -c FORWARDER TARGET_HOST TARGET_PORT LISTEN_PORT``.
FORWARDER = """\
import asyncio, socket, sys

host, port, listen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


async def pipe(reader, writer):
    try:
        while data := await reader.read(262144):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def handle(reader, writer):
    try:
        # Resolved per connection: a replaced task is found at once.
        up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (OSError, asyncio.TimeoutError):
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", listen, reuse_address=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
"""


def gateway_config(
    *,
    image: str,
    network: str,
    target_host: str,
    target_port: int,
    address: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The create body of a gateway container (pure, testable).

    Hardened like a function: no capabilities, no new privileges, read-only
    root filesystem, small limits; published on ``address`` only.
    """
    return {
        "Image": image,
        "Entrypoint": ["python3", "-c", FORWARDER],
        "Cmd": [target_host, str(target_port), str(GATEWAY_PORT)],
        "Labels": dict(labels),
        "ExposedPorts": {f"{GATEWAY_PORT}/tcp": {}},
        "HostConfig": {
            "PortBindings": {f"{GATEWAY_PORT}/tcp": [{"HostIp": address, "HostPort": ""}]},
            "NetworkMode": network,
            "Memory": 64 * 1024 * 1024,
            "MemorySwap": 64 * 1024 * 1024,
            "NanoCpus": 500_000_000,
            "PidsLimit": 64,
            "Privileged": False,
            "SecurityOpt": ["no-new-privileges"],
            "CapDrop": ["ALL"],
            "ReadonlyRootfs": True,
        },
    }
