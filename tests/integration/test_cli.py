"""The command line against the real engine: SeBS's start/invoke/stop flow and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FUNCTION = """
def handler(event):
    block = bytearray(event.get("mb", 0) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"size": len(block)}
"""


def faaslab(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faaslab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Path]]:
    """State files of deployments a test started; stopped afterwards whatever happened."""
    files: list[Path] = []
    yield files
    for path in files:
        if path.exists():
            faaslab("stop", str(path), str(tmp_path / "cleanup_stats.json"))


def test_start_invoke_kill_supervisor_stop(
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
    started: list[Path],
) -> None:
    a = make_function("fa", FUNCTION)
    b = make_function("fb", FUNCTION)
    out = tmp_path / "out.json"
    started.append(out)
    result = faaslab(
        "start",
        str(a),
        str(b),
        "--deployments",
        "3",
        "--measure-interval",
        "1",
        "--id",
        deployment_id,
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(out.read_text())
    assert len(state["functions"]) == 6
    for entry in state["functions"]:  # the keys SeBS users' scripts read
        assert {"benchmark", "name", "instance_id", "port", "url"} <= entry.keys()
        assert entry["url"] == f"127.0.0.1:{entry['port']}"
    assert (out.stat().st_mode & 0o777) == 0o600

    result = faaslab(
        "invoke", str(out), "fa", "-n", "50", "--concurrency", "4", "--event", '{"mb": 4}'
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 50
    assert all(line["error"] is None for line in lines)
    assert all(line["memory_peak_bytes"] for line in lines)
    assert sum(line["is_cold"] for line in lines) == 3

    status = faaslab("status", str(out))
    assert status.returncode == 0, status.stderr
    assert "supervisor: running" in status.stdout

    os.kill(state["supervisor"]["pid"], signal.SIGKILL)
    status = faaslab("status", str(out))
    assert status.returncode == 1
    assert "NOT RUNNING" in status.stdout

    stats = tmp_path / "memory_stats.json"
    result = faaslab("stop", str(out), str(stats))
    assert result.returncode == 0, result.stderr
    memory = json.loads(stats.read_text())
    containers = {k: v for k, v in memory.items() if k != "precision_errors"}
    assert set(containers) == {f["instance_id"] for f in state["functions"]}
    for entry in containers.values():
        assert set(entry) == {
            "mean mem. usage",
            "max mem. usage",
            "number of measurements",
            "full profile (in bytes)",
        }
        assert entry["number of measurements"] == len(entry["full profile (in bytes)"]) > 0
    report = json.loads((tmp_path / "memory_report.json").read_text())
    assert report["complete"] is False
    assert "died" in report["incomplete_reason"]

    ps = faaslab("ps")
    assert deployment_id not in ps.stdout

    before = stats.read_bytes()
    again = faaslab("stop", str(out), str(stats))
    assert again.returncode == 0
    assert "already stopped" in again.stdout
    assert stats.read_bytes() == before


def test_stop_through_a_live_supervisor_writes_complete_stats(
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
    started: list[Path],
) -> None:
    a = make_function("fa", FUNCTION)
    out = tmp_path / "dep.json"
    started.append(out)
    assert (
        faaslab(
            "start", str(a), "--measure-interval", "1", "--id", deployment_id, "-o", str(out)
        ).returncode
        == 0
    )
    result = faaslab("invoke", str(out), "fa", "--event", '{"mb": 64}')
    assert result.returncode == 0, result.stderr
    invocation = json.loads(result.stdout)
    assert invocation["memory_peak_bytes"] - invocation["memory_before_bytes"] >= 64 * 1024 * 1024
    result = faaslab("stop", str(out))
    assert result.returncode == 0, result.stderr
    stats_path = Path("memory_stats.json").absolute()
    try:
        memory = json.loads(stats_path.read_text())
        (entry,) = (v for k, v in memory.items() if k != "precision_errors")
        assert float(entry["max mem. usage"].split()[0]) * 1e6 >= 64 * 1024 * 1024
        report = json.loads(stats_path.with_name("memory_report.json").read_text())
        assert report["complete"] is True
    finally:
        stats_path.unlink(missing_ok=True)
        stats_path.with_name("memory_report.json").unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "corrupt or truncated"),
        (b'{"faaslab": "faaslab.deployment", "version": 1, "id": "x"', "corrupt or truncated"),
        (b'{"faaslab": "faaslab.deployment", "version": 99, "id": "x"}', "newer faaslab"),
        (b'{"hello": "world"}', "not a faaslab deployment file"),
        (b'{"faaslab": "faaslab.deployment", "version": 1, "status": 5}', "not a valid"),
    ],
)
@pytest.mark.parametrize("command", ["status", "stop", "invoke"])
def test_bad_state_files_are_refused_untouched(
    tmp_path: Path, content: bytes, problem: str, command: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    args = [command, str(path)] + (["fn"] if command == "invoke" else [])
    result = faaslab(*args)
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == content


def test_refusals_before_anything_is_created(
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
    started: list[Path],
) -> None:
    a = make_function("fa", FUNCTION)
    result = faaslab("start", str(a), "--id", deployment_id, "-o", "/nonexistent/dir/out.json")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert deployment_id not in faaslab("ps").stdout  # nothing was created

    out = tmp_path / "out.json"
    started.append(out)
    assert faaslab("start", str(a), "--id", deployment_id, "-o", str(out)).returncode == 0
    again = faaslab("start", str(a), "--id", f"{deployment_id}x", "-o", str(out))
    assert again.returncode == 2
    assert "is live" in again.stderr

    unknown = faaslab("invoke", str(out), "nope")
    assert unknown.returncode == 2
    assert "no function named 'nope'" in unknown.stderr
    bad_event = faaslab("invoke", str(out), "fa", "--event", "{oops")
    assert bad_event.returncode == 2
    assert "--event: not JSON" in bad_event.stderr
    out_of_range = faaslab("invoke", str(out), "fa", "--input", "3")
    assert out_of_range.returncode == 2
    assert "out of range" in out_of_range.stderr

    stopped = faaslab("stop", str(out), str(tmp_path / "stats.json"))
    assert stopped.returncode == 0
    assert "sampling was off" in stopped.stdout


SEBS = Path(__file__).parents[1] / "data" / "sebs"


def test_a_sebs_benchmark_end_to_end(
    tmp_path: Path, deployment_id: str, started: list[Path]
) -> None:
    """SeBS's layout, storage, inputs, a requirement and validation, through the CLI."""
    out = tmp_path / "out.json"
    started.append(out)
    result = faaslab(
        "start",
        str(SEBS / "900.storage-roundtrip"),
        str(SEBS / "910.requirement"),
        "--size",
        "test",
        "--data-dir",
        str(SEBS / "benchmarks-data" / "900.storage-roundtrip"),
        "--measure-interval",
        "1",
        "--id",
        deployment_id,
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(out.read_text())
    assert state["storage"]["type"] == "minio"
    assert state["inputs"][0]["bucket"]["input"] == "900.storage-roundtrip-0-input"
    roundtrip = faaslab("invoke", str(out), "900.storage-roundtrip", "--input", "0", "--validate")
    assert roundtrip.returncode == 0, roundtrip.stdout + roundtrip.stderr
    line = json.loads(roundtrip.stdout)
    assert line["validation"] == {"status": "valid", "reason": None}
    requirement = faaslab("invoke", str(out), "910.requirement", "--event", '{"n": 21}')
    assert requirement.returncode == 0, requirement.stderr
    assert json.loads(requirement.stdout)["output"]["result"]["doubled"] == 42
    stats = tmp_path / "memory_stats.json"
    assert faaslab("stop", str(out), str(stats)).returncode == 0
    assert len(json.loads(stats.read_text())) == 3  # two containers + precision_errors


def test_up_serves_until_sigint_then_writes_the_stats(
    tmp_path: Path, make_function: Callable[..., Path], deployment_id: str
) -> None:
    a = make_function("fa", FUNCTION)
    out = tmp_path / "up.json"
    command = [
        sys.executable,
        "-m",
        "faaslab",
        "up",
        str(a),
        "--measure-interval",
        "1",
        "--storage",
        "none",
        "--id",
        deployment_id,
        "-o",
        str(out),
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # the table: blocks until the deployment is ready
            assert line.startswith("fa-0"), line
            assert line.split()[1].startswith("http://127.0.0.1:")
            invoked = faaslab("invoke", str(out), "fa", "--event", '{"mb": 1}')
            assert invoked.returncode == 0, invoked.stderr
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
    stats = json.loads((tmp_path / "memory_stats.json").read_text())
    assert len(stats) == 2
    assert json.loads(out.read_text())["status"] == "stopped"


def test_gc_removes_what_an_orphaned_deployment_left(
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
    started: list[Path],
) -> None:
    a = make_function("fa", FUNCTION)
    out = tmp_path / "out.json"
    started.append(out)
    assert (
        faaslab(
            "start", str(a), "--storage", "none", "--id", deployment_id, "-o", str(out)
        ).returncode
        == 0
    )
    assert "live" in next(x for x in faaslab("ps").stdout.splitlines() if deployment_id in x)
    os.kill(json.loads(out.read_text())["supervisor"]["pid"], signal.SIGKILL)
    listed = next(x for x in faaslab("ps").stdout.splitlines() if deployment_id in x)
    assert "orphaned" in listed
    # Only this test's deployment: other orphans on a shared engine are not ours.
    refused = faaslab("gc", deployment_id)  # no terminal, no --yes: removes nothing
    assert refused.returncode == 2
    assert deployment_id in faaslab("ps").stdout
    collected = faaslab("gc", "--yes", deployment_id)
    assert collected.returncode == 0
    assert f"of {deployment_id}" in collected.stdout
    assert deployment_id not in faaslab("ps").stdout


# -- scaling options ------------------------------------------------------------------


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
    gone = wait_for_status(out, "2 started, 2 stopped")  # both torn down
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
