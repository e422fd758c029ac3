"""Engine bootstrap decisions, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from faaslab import SystemSetupError
from faaslab._backend import _daemon


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAASLAB_STATE_DIR", str(tmp_path))


def test_a_running_engine_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_daemon, "engine_answers", lambda endpoint=None: True)
    status = _daemon.start_engine()
    assert status.started is False


def test_not_root_and_no_engine_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(_daemon, "engine_answers", lambda endpoint=None: False)
    monkeypatch.setattr(_daemon.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemSetupError, match="needs root") as raised:
        _daemon.start_engine()
    assert "sudo make engine" in str(raised.value)


def test_an_unreachable_docker_host_is_never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    monkeypatch.setattr(_daemon, "engine_answers", lambda endpoint=None: False)
    with pytest.raises(SystemSetupError, match=r"DOCKER_HOST=tcp://127\.0\.0\.1:1"):
        _daemon.start_engine()


def test_missing_dockerd_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(_daemon, "engine_answers", lambda endpoint=None: False)
    monkeypatch.setattr(_daemon.os, "geteuid", lambda: 0)
    monkeypatch.setattr(_daemon.shutil, "which", lambda name: None)
    with pytest.raises(SystemSetupError, match=r"apt-get install docker\.io"):
        _daemon.start_engine()


def test_engine_down_stops_only_a_daemon_it_started(tmp_path: Path) -> None:
    assert _daemon.stop_engine() is None  # no pid file
    (tmp_path / "dockerd.pid").write_text("1\n")  # pid 1 is not our dockerd
    assert _daemon.stop_engine() is None
