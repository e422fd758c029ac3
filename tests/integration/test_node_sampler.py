"""The node sampler and its seam, without a swarm: the real worker behind TCP.

``python -m faaslab._sampling._node`` runs on this host (listening on
127.0.0.1 only), reading the host's own cgroup tree; a deployment-side
``remote_sampling`` connects with the token, registers a real container by
id (``container:<id>``), and gets batches of the existing frames.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from faaslab._backend import Backend
from faaslab._errors import SamplingError
from faaslab._sampling import CONTAINER_PATH, remote_sampling

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def node_sampler(tmp_path: Path) -> Iterator[tuple[int, str]]:
    token = secrets.token_hex(16)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    port = _free_port()
    log = (tmp_path / "node.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "faaslab._sampling._node"],
        env={
            **os.environ,
            "FAASLAB_SAMPLER_TOKEN_FILE": str(token_file),
            "FAASLAB_SAMPLER_PORT": str(port),
            "FAASLAB_SAMPLER_LISTEN": "127.0.0.1",
            "FAASLAB_CGROUP_ROOT": "/sys/fs/cgroup",
        },
        stderr=log,
    )
    log.close()
    try:
        yield port, token
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def container(engine: Backend, deployment_id: str) -> object:
    config = {
        "Image": "faaslab/python:3.11",
        "Entrypoint": ["python3", "-c", "import time; time.sleep(120)"],
        "Labels": {"faaslab.deployment": deployment_id},
        "HostConfig": {"NetworkMode": "none", "CapDrop": ["ALL"]},
    }
    container_id = await engine.create_container(config, name=f"faaslab-{deployment_id}-sleep")
    try:
        await engine.start_container(container_id)
        yield container_id
    finally:
        await engine.remove_container(container_id)


async def test_a_container_is_sampled_through_the_node_sampler(
    node_sampler: tuple[int, str], container: str
) -> None:
    port, token = node_sampler
    sampling = remote_sampling("127.0.0.1", port, token)
    async with anyio.create_task_group() as tg:
        await tg.start(sampling.run)
        assert sampling.priority  # the worker's own hello came through
        subscription = await sampling.register(container, CONTAINER_PATH + container, 1.0)
        samples = 0
        with anyio.fail_after(30):
            async for batch in subscription:
                samples += len(batch.values)
                assert all(value > 0 for value in batch.values)
                if samples >= 500:
                    break
        await sampling.unregister(container)
        tg.cancel_scope.cancel()
    assert samples >= 500


async def test_an_unknown_container_is_refused_with_what_was_tried(
    node_sampler: tuple[int, str],
) -> None:
    port, token = node_sampler
    sampling = remote_sampling("127.0.0.1", port, token)
    async with anyio.create_task_group() as tg:
        await tg.start(sampling.run)
        with pytest.raises(SamplingError, match="no readable cgroup memory file"):
            await sampling.register("nobody", CONTAINER_PATH + "0" * 64, 1.0)
        tg.cancel_scope.cancel()


async def test_a_wrong_token_gets_no_sampler(node_sampler: tuple[int, str]) -> None:
    port, _ = node_sampler
    sampling = remote_sampling("127.0.0.1", port, "f" * 32, connect_timeout=2)
    async with anyio.create_task_group() as tg:
        with pytest.raises(SamplingError, match="no node sampler answers"):
            await tg.start(sampling.run)
