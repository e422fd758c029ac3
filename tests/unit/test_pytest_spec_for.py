"""The pytest plugin's spec_for: what a test passes, as a DeploymentSpec (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faaslab import DeploymentSpec, FunctionSpec, SpecError, StorageSpec
from faaslab._testing import spec_for


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "double"
    directory.mkdir()
    (directory / "function.py").write_text("def handler(event):\n    return event\n")
    return directory


def test_a_directory_is_one_function_named_after_it(code: Path) -> None:
    spec = spec_for(code, instances=3, memory_mb=256, storage=StorageSpec(kind="none"))
    (function,) = spec.functions
    assert (function.name, function.instances, function.memory_mb) == ("double", 3, 256)
    assert spec.storage.kind == "none"
    assert spec_for(code, name="other").functions[0].name == "other"


def test_a_spec_is_used_as_it_is(code: Path) -> None:
    spec = DeploymentSpec(functions=[FunctionSpec(name="f", code=str(code))])
    assert spec_for(spec) is spec
    with pytest.raises(SpecError, match=r"options \['instances'\] given with a DeploymentSpec"):
        spec_for(spec, instances=2)


def test_an_unknown_option_is_named(code: Path) -> None:
    with pytest.raises(SpecError, match="colour is no FunctionSpec or DeploymentSpec field"):
        spec_for(code, colour="red")


def test_bad_values_are_the_specs_own_errors(code: Path) -> None:
    with pytest.raises(SpecError, match="instances"):
        spec_for(code, instances=0)
