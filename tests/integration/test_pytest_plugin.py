"""faaslab's pytest plugin as a user runs it: a test file of theirs, under plain pytest.

pytester runs the user's file in a pytest of its own (a subprocess, so the
plugin is loaded from its entry point as in a user's project); the
deployments it made are then looked for on the engine by their ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faaslab._backend import Backend, deployment_filter

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
pytest_plugins = ["pytester"]

USER_TESTS = '''
import os
from pathlib import Path

import anyio
import pytest

from faaslab import SpecError, StorageSpec

pytestmark = [pytest.mark.anyio, pytest.mark.faaslab]

DOUBLE = "def handler(event):\\n    return {'y': 2 * event['x']}\\n"
IDS = Path(__file__).with_name("ids.txt")


def remember(dep):
    with IDS.open("a") as ids:
        ids.write(dep.id + "\\n")


async def test_a_function_directory_deploys_and_answers(faaslab_deployment, faaslab_function_dir):
    code = faaslab_function_dir(DOUBLE, name="double")
    dep = await faaslab_deployment(code, instances=2, storage=StorageSpec(kind="none"))
    remember(dep)
    assert [i.name for i in dep.instances()] == ["double-0", "double-1"]
    assert (await dep.invoke("double", {"x": 21})).output == {"y": 42}


async def test_the_body_raises_and_teardown_still_removes(faaslab_deployment, faaslab_function_dir):
    dep = await faaslab_deployment(faaslab_function_dir(DOUBLE), storage=StorageSpec(kind="none"))
    remember(dep)
    await dep.invoke("fn", {"x": 1})
    raise RuntimeError("the test body failed")


async def test_a_cancelled_body_is_torn_down_too(faaslab_deployment, faaslab_function_dir):
    code = faaslab_function_dir(DOUBLE, name="slow")
    deployment_id = f"pt{os.getpid()}c"
    with IDS.open("a") as ids:
        ids.write(deployment_id + "\\n")
    # Cancelled while starting or while it runs: either way nothing may stay.
    with anyio.move_on_after(1.0):
        await faaslab_deployment(code, deployment_id=deployment_id, instances=2)
        await anyio.sleep(30)


async def test_an_unknown_option_is_named(faaslab_deployment, faaslab_function_dir):
    with pytest.raises(SpecError, match="colour is no FunctionSpec or DeploymentSpec field"):
        await faaslab_deployment(faaslab_function_dir(DOUBLE), colour="red")
'''

NO_ENGINE = '''
import pytest

@pytest.mark.faaslab
def test_needs_an_engine():
    raise AssertionError("must be skipped")
'''


async def test_a_users_tests_pass_and_fail_and_leave_nothing(
    pytester: pytest.Pytester, engine: Backend
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    # Plain pytest: faaslab's plugin and anyio's come from their entry points.
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the test body failed*"])
    ids = (Path(pytester.path) / "ids.txt").read_text().split()
    assert len(ids) == 3, ids
    for deployment_id in ids:
        label = deployment_filter(deployment_id)
        assert await engine.containers_labeled(label) == []
        assert await engine.networks_labeled(label) == []
        assert await engine.volumes_labeled(label) == []


def test_the_marker_skips_with_the_reason_when_no_engine_answers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_user=NO_ENGINE)
    missing = f"unix://{pytester.path}/no-engine.sock"
    # With the engine it runs (and fails as written); without one it is skipped.
    result = pytester.runpytest_subprocess("-rs", "-q", "-p", "no:cacheprovider")
    monkeypatch.setenv("DOCKER_HOST", missing)
    skipped = pytester.runpytest_subprocess("-rs", "-q", "-p", "no:cacheprovider")
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines([f"*faaslab: no Docker engine answers at {missing}*"])
    result.assert_outcomes(failed=1)
