"""faaslab's pytest plugin: deployments as fixtures, as Testcontainers gives services.

Installed with faaslab (entry point ``pytest11: faaslab``), active in any
pytest run that has faaslab installed::

    import pytest

    pytestmark = [pytest.mark.anyio, pytest.mark.faaslab]

    async def test_double(faaslab_deployment, faaslab_function_dir):
        code = faaslab_function_dir("def handler(event):\\n    return {'y': 2 * event['x']}\\n",
                                    name="double")
        dep = await faaslab_deployment(code, instances=2)
        assert (await dep.invoke("double", {"x": 21})).output == {"y": 42}

- ``faaslab_deployment(spec_or_function_dir, **options)`` opens a deployment
  and returns it, started. A function directory gives one function named
  after it (as ``faaslab start DIR`` does); ``options`` are FunctionSpec
  fields (``instances``, ``memory_mb``, ...) or DeploymentSpec fields
  (``measure_interval_ms``, ``storage``, ...); a DeploymentSpec is used as
  it is. The defaults are ``open_deployment``'s (SeaweedFS storage, sampling
  off); ``storage=StorageSpec(kind="none")`` starts quicker. Every
  deployment the test made is stopped and swept at teardown, whether the
  test passed, failed or was cancelled.
- ``faaslab_function_dir(source, name="fn", files=None)`` writes ``source``
  as ``function.py`` (``function.js`` with ``language="nodejs"``) in a new
  directory ``name`` under the test's temporary directory, with ``files``
  (``{"requirements.txt": "six\\n"}``) beside it, and returns it.
- ``@pytest.mark.faaslab`` skips the test, with the reason, when no Docker
  engine answers (``DOCKER_HOST`` or the local socket).

The async fixture runs under anyio's pytest plugin (``pytest.mark.anyio``),
on asyncio: it asks for ``anyio_backend``, as anyio's plugin requires.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from anyio.abc import TaskStatus

from .._backend import engine_answers, engine_endpoint
from .._deployment import Deployment, open_deployment
from .._errors import SpecError
from .._spec import DeploymentSpec, FunctionSpec

__all__ = ("spec_for",)

MARKER = "faaslab: needs a Docker engine; skipped, with the reason, when none answers"



def _field_names(struct: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(field.name for field in msgspec.structs.fields(struct))


def spec_for(target: DeploymentSpec | str | Path, **options: Any) -> DeploymentSpec:
    """The DeploymentSpec a test asks for (pure): a spec as it is, or a function directory.

    ``options`` go to the FunctionSpec or the DeploymentSpec by their names;
    one that is neither's is a SpecError naming it.
    """
    if isinstance(target, DeploymentSpec):
        if options:
            raise SpecError(
                f"faaslab_deployment: options {sorted(options)} given with a DeploymentSpec; "
                "put them in the spec"
            )
        return target
    code = Path(target)
    function_fields, deployment_fields = _field_names(FunctionSpec), _field_names(DeploymentSpec)
    unknown = sorted(set(options) - function_fields - deployment_fields - {"name"})
    if unknown:
        raise SpecError(
            f"faaslab_deployment: {', '.join(unknown)} is no FunctionSpec or DeploymentSpec field"
        )
    function = {k: v for k, v in options.items() if k in function_fields and k != "code"}
    function.setdefault("name", code.name)
    deployment = {k: v for k, v in options.items() if k in deployment_fields - {"functions"}}
    return DeploymentSpec(
        functions=[FunctionSpec(code=str(code), **function)],
        **deployment,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


_engine_answered: dict[str, bool] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("faaslab") is None:
        return
    endpoint = engine_endpoint()
    if endpoint not in _engine_answered:  # asked once per run and endpoint
        _engine_answered[endpoint] = engine_answers(endpoint)
    if not _engine_answered[endpoint]:
        pytest.skip(
            f"faaslab: no Docker engine answers at {endpoint} "
            "(start one with `python -m faaslab engine up`, or set DOCKER_HOST)"
        )


DeploymentFactory = Callable[..., Awaitable[Deployment]]


@pytest.fixture
async def faaslab_deployment(anyio_backend: object) -> AsyncIterator[DeploymentFactory]:
    """``await faaslab_deployment(spec_or_function_dir, **options)``: a started deployment.

    Each deployment lives in a task of the fixture's own task group (a
    deployment's task group must be left by the task that entered it, and
    anyio's plugin runs a fixture's teardown in another task than the
    test's). Teardown asks them all to stop and waits for them.
    """
    done = anyio.Event()

    async def host(spec: DeploymentSpec, *, task_status: TaskStatus[Deployment]) -> None:
        async with open_deployment(spec) as deployment:
            task_status.started(deployment)
            await done.wait()

    async with anyio.create_task_group() as tg:

        async def make(target: DeploymentSpec | str | Path, **options: Any) -> Deployment:
            spec = spec_for(target, **options)
            if spec.deployment_id is None:
                spec = msgspec.structs.replace(spec, deployment_id=f"pt-{secrets.token_hex(4)}")
            deployment: Deployment = await tg.start(host, spec)
            return deployment

        try:
            yield make
        finally:
            # A failed or cancelled test still stops and sweeps what it made:
            # leaving the task group waits for every deployment's own (shielded,
            # bounded) stop and sweep.
            done.set()


@pytest.fixture
def faaslab_function_dir(tmp_path: Path) -> Callable[..., Path]:
    """``faaslab_function_dir(source, name="fn", files=None, language="python")``: its path."""

    def make(
        source: str,
        name: str = "fn",
        *,
        files: Mapping[str, str] | None = None,
        language: str = "python",
    ) -> Path:
        entry = {"python": "function.py", "nodejs": "function.js"}.get(language)
        if entry is None:
            raise SpecError(f"faaslab_function_dir: language {language!r}; python or nodejs")
        directory = tmp_path / name
        if directory.exists():
            raise SpecError(f"faaslab_function_dir: {name!r} was made already in this test")
        directory.mkdir(mode=0o755)
        (directory / entry).write_text(source)
        for file, text in (files or {}).items():
            (directory / file).write_text(text)
        # Containers read the code as an unprivileged user (uid 10001).
        directory.chmod(0o755)
        for path in directory.iterdir():
            path.chmod(0o644)
        return directory

    return make
