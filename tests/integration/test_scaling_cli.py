"""`faaslab start/status/invoke/stop` with scaling options, against the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FUNCTION = """
def handler(event):
    return {"ok": True}
"""


def faaslab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faaslab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        check=False,
    )


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Path]]:
    files: list[Path] = []
    yield files
    for path in files:
        if path.exists():
            faaslab("stop", str(path), str(tmp_path / "cleanup_stats.json"))


def wait_for_status(out: Path, text: str, timeout: float = 60) -> str:
    """`faaslab status` until its output holds ``text`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        status = faaslab("status", str(out))
        assert status.returncode == 0, status.stderr
        if text in status.stdout or time.monotonic() > deadline:
            return status.stdout


def test_start_with_keep_alive_scales_on_invoke_and_status_shows_it(
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
    started: list[Path],
) -> None:
    code = make_function("fa", FUNCTION)
    out = tmp_path / "out.json"
    started.append(out)
    result = faaslab(
        "start", str(code), "--scaling", "keep-alive", "--keep-alive", "5", "--max-instances",
        "2", "--storage", "none", "--id", deployment_id, "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "keep-alive, 0 of at most 2 instance(s) now" in result.stderr
    state = json.loads(out.read_text())
    assert state["functions"] == []
    assert state["spec"]["functions"][0]["scaling"]["keep_alive_s"] == 5.0

    result = faaslab("invoke", str(out), "fa", "-n", "4", "--concurrency", "2")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(line["cold_start"] for line in lines) == 2  # two at once: two cold starts
    assert all(line["cpu_time_us"] is not None for line in lines)

    status = faaslab("status", str(out))
    assert "fa (keep-alive): 2 instance(s) alive, at most 2 so far; 2 started" in status.stdout
    assert status.stdout.count(" ready ") == 2
    gone = wait_for_status(out, "0 instance(s) alive")
    assert "fa (keep-alive): 0 instance(s) alive, at most 2 so far; 2 started, 2 stopped" in gone
    assert json.loads(out.read_text())["functions"] == []

    stats = tmp_path / "memory_stats.json"
    assert faaslab("stop", str(out), str(stats)).returncode == 0


def test_scaling_options_are_refused_with_one_line(
    tmp_path: Path, make_function: Callable[..., Path], deployment_id: str
) -> None:
    code = make_function("fa", FUNCTION)
    out = str(tmp_path / "out.json")
    for options, message in [
        (["--scaling", "keep-alive"], "--max-instances: None; policy 'keep-alive' needs"),
        (["--keep-alive", "5"], "--keep-alive: 5.0; policy 'fixed'"),
        (["--scaling", "keep-alive", "--max-instances", "2", "--deployments", "3"],
         "--deployments 3: with --scaling keep-alive"),
        (["--scaling", "lazy"], "invalid choice: 'lazy'"),
    ]:  # fmt: skip
        result = faaslab("start", str(code), *options, "--id", deployment_id, "-o", out)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    assert deployment_id not in faaslab("ps").stdout
