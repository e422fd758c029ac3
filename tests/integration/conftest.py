"""Integration fixtures: a real engine, real images, unique ids, leak checks per test."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from faaslab._backend import Backend, deployment_filter, open_engine
from leakcheck import run_sampler_address, stop_sampler_at

#: One id per test run: every deployment a test makes is named under it.
RUN_ID = os.environ.get("FAASLAB_TEST_RUN") or secrets.token_hex(3)
#: The run's deployments (and the supervisors `faaslab start` spawns, which
#: inherit this) share one host sampler of the run's own, not the host's: a
#: test that kills it touches no other run, and it runs this checkout's code.
os.environ.setdefault("FAASLAB_SAMPLER_ADDRESS", run_sampler_address(RUN_ID))
#: A host sampler started by the tests' deployments exits soon after the last
#: one (the default, 30 s, is for people who start deployments by hand).
os.environ.setdefault("FAASLAB_SAMPLER_IDLE_S", "5")
_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def run_sampler() -> Iterator[None]:
    """Stop the run's host sampler, by its pid, once the run is over."""
    address = os.environ["FAASLAB_SAMPLER_ADDRESS"]
    yield
    if not address.startswith("unix://"):
        return
    stop_sampler_at(address)
    if address == run_sampler_address(RUN_ID):  # our directory, not a caller's
        shutil.rmtree(Path(address.removeprefix("unix://")).parent, ignore_errors=True)


@pytest.fixture
async def engine() -> AsyncIterator[Backend]:
    async with open_engine() as connected:
        yield connected


async def leftovers(engine: Backend, deployment_id: str) -> list[str]:
    """Everything on the engine still labeled with ``deployment_id``."""
    label = deployment_filter(deployment_id)
    found = [f"container {c['Id'][:12]}" for c in await engine.containers_labeled(label)]
    found += [f"network {n['Name']}" for n in await engine.networks_labeled(label)]
    found += [f"volume {v['Name']}" for v in await engine.volumes_labeled(label)]
    return found


Leftovers = Callable[[str], Awaitable[list[str]]]


@pytest.fixture
def leftovers_of(engine: Backend) -> Leftovers:
    """``await leftovers_of(deployment_id)``: what of it is still on the engine."""
    return lambda deployment_id: leftovers(engine, deployment_id)


@pytest.fixture
def deployment_id() -> str:
    """A deployment id no other test or run uses."""
    return f"t{RUN_ID}-{next(_counter)}"


@pytest.fixture
async def nothing_left(engine: Backend, deployment_id: str) -> AsyncIterator[None]:
    """Fails the test when anything of its deployment is left on the engine."""
    yield
    left = await leftovers(engine, deployment_id)
    assert left == [], f"deployment {deployment_id} left {left}"


@pytest.fixture
def make_function(tmp_path: Path) -> Callable[..., Path]:
    """Write a function directory: make_function("name", '''def handler(event): ...''')."""

    def make(name: str, source: str, **files: str) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "function.py").write_text(textwrap.dedent(source))
        for filename, text in files.items():
            (directory / filename).write_text(textwrap.dedent(text))
        # The container runs without CAP_DAC_OVERRIDE: the code must be world-readable.
        directory.chmod(0o755)
        for path in directory.iterdir():
            path.chmod(0o644)
        return directory

    return make
