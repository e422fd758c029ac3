"""Specs: validation at the edge, with errors naming the field and the value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faaslab import DeploymentSpec, FunctionSpec, SpecError, load_deployment_spec


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "fn"
    directory.mkdir()
    (directory / "function.py").write_text("def handler(event):\n    return event\n")
    return directory


def test_a_valid_function(code: Path) -> None:
    spec = FunctionSpec(name="110.dynamic-html", code=str(code), instances=3)
    assert spec.instances == 3
    assert spec.concurrency == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "bad name", "name: 'bad name'"),
        ("name", "-x", "name: '-x'"),
        ("instances", 0, "instances: 0"),
        ("memory_mb", 2, "memory_mb: 2"),
        ("cpus", 0, "cpus: 0"),
        ("timeout_s", 0, "timeout_s: 0"),
        ("concurrency", 0, "concurrency: 0"),
        ("env", {"A=B": "x"}, "env: 'A=B'"),
        ("tmp_mb", 0, "tmp_mb: 0"),
        ("tmp_mb", 10241, "tmp_mb: 10241"),
    ],
)
def test_bad_function_fields(code: Path, field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {"name": "fn", "code": str(code), field: value}
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        FunctionSpec(**fields)  # type: ignore[arg-type]


def test_code_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is not a directory"):
        FunctionSpec(name="fn", code=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"has no function\.py"):
        FunctionSpec(name="fn", code=str(tmp_path / "empty"))
    nohandler = tmp_path / "nohandler"
    nohandler.mkdir()
    (nohandler / "function.py").write_text("def main(event):\n    return event\n")
    with pytest.raises(SpecError, match="no top-level `handler"):
        FunctionSpec(name="fn", code=str(nohandler))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "function.py").write_text("def handler(event:\n")
    with pytest.raises(SpecError, match="does not parse"):
        FunctionSpec(name="fn", code=str(broken))


@pytest.mark.parametrize(
    "source",
    [
        "async def handler(event):\n    return {}\n",
        "handler = lambda e: e\n",
        "from os import path as handler\n",
    ],
)
def test_handler_forms_accepted_without_import(tmp_path: Path, source: str) -> None:
    (tmp_path / "function.py").write_text("import does_not_exist_anywhere\n" + source)
    FunctionSpec(name="fn", code=str(tmp_path))


def test_deployment_rules(code: Path) -> None:
    fn = FunctionSpec(name="fn", code=str(code))
    with pytest.raises(SpecError, match="at least one function"):
        DeploymentSpec(functions=[])
    with pytest.raises(SpecError, match="duplicate function name 'fn'"):
        DeploymentSpec(functions=[fn, fn])
    for bad in (0, -2, -0.5):
        with pytest.raises(SpecError, match="measure_interval_ms"):
            DeploymentSpec(functions=[fn], measure_interval_ms=bad)
    assert not DeploymentSpec(functions=[fn]).sampling
    assert DeploymentSpec(functions=[fn], measure_interval_ms=0.5).sampling
    with pytest.raises(SpecError, match="no function named 'x'"):
        DeploymentSpec(functions=[fn]).function("x")


def test_reliability_fields(code: Path) -> None:
    fn = FunctionSpec(name="fn", code=str(code))
    assert fn.tmp_mb == 512  # Lambda's default ephemeral storage
    spec = DeploymentSpec(functions=[fn])
    assert spec.max_restarts is None  # never refused without a user bound
    assert (spec.restart_backoff_s, spec.restart_backoff_max_s) == (1.0, 30.0)
    assert spec.engine_timeout_s == 120.0
    assert DeploymentSpec(functions=[fn], max_restarts=0).max_restarts == 0
    for field, value, message in (
        ("max_restarts", -1, "max_restarts: -1"),
        ("restart_backoff_s", 0, "restart_backoff_s: 0"),
        ("engine_timeout_s", 0, "engine_timeout_s: 0"),
        ("restart_backoff_max_s", 0.5, "restart_backoff_max_s: 0.5; must be >= restart_backoff_s"),
    ):
        with pytest.raises(SpecError, match=message):
            DeploymentSpec(functions=[fn], **{field: value})  # type: ignore[arg-type]


def test_load_toml_and_json(tmp_path: Path, code: Path) -> None:
    toml = tmp_path / "dep.toml"
    toml.write_text(
        f'measure_interval_ms = 1\n[[functions]]\nname = "fn"\ncode = "{code.name}"\n'
        "instances = 2\n"
    )
    spec = load_deployment_spec(toml)
    assert spec.functions[0].code == str(code.resolve())
    assert spec.functions[0].instances == 2
    as_json = tmp_path / "dep.json"
    as_json.write_text(json.dumps({"functions": [{"name": "fn", "code": str(code)}]}))
    assert load_deployment_spec(as_json).functions[0].name == "fn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('functions = [{name = "fn", code = "fn", colour = 1}]', "colour"),
        (
            'functions = [{name = "fn", code = "fn", instances = "two"}]',
            r"functions\[0\]\.instances",
        ),
        ('functions = [{name = "fn", code = "fn", instances = 0}]', "instances: 0"),
        ("functions = [", "not valid toml"),
    ],
)
def test_load_errors_name_the_file_and_field(
    tmp_path: Path, code: Path, text: str, message: str
) -> None:
    path = tmp_path / "dep.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message) as raised:
        load_deployment_spec(path)
    assert str(path) in str(raised.value)
