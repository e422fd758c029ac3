"""The deployment file: atomic, private, versioned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faaslab import SpecError, StateError
from faaslab._state import STATE_VERSION, DeploymentState, check_writable, load_state, write_state


def state() -> DeploymentState:
    return DeploymentState(id="abc", status="running", created_at=1.0, inputs=[{"n": 1}])


def test_roundtrip_mode_and_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_state(path, state())
    write_state(path, state())
    assert load_state(path) == state()
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    data = json.loads(path.read_text())
    assert data["faaslab"] == "faaslab.deployment"
    assert data["version"] == STATE_VERSION


def test_fields_added_later_get_defaults(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "faaslab": "faaslab.deployment",
                "version": 1,
                "id": "x",
                "status": "stopped",
                "created_at": 0,
            }
        )
    )
    loaded = load_state(path)
    assert loaded.functions == []
    assert loaded.input_functions == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "corrupt or truncated"),
        ("[1, 2]", "not a faaslab deployment file"),
        ('{"faaslab": "faaslab.deployment", "version": "1"}', 'no valid "version"'),
        ('{"faaslab": "faaslab.deployment", "version": 0}', "never written by faaslab"),
        ('{"faaslab": "faaslab.deployment", "version": 2}', "newer faaslab"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(StateError, match=message):
        load_state(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no such deployment file"):
        load_state(tmp_path / "nope.json")


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "new.json")
    with pytest.raises(SpecError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(SpecError, match="does not exist"):
        check_writable(tmp_path / "missing" / "out.json")
