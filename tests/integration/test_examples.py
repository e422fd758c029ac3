"""examples/ and the README's library example, run as a user runs them.

Each runs as a script with this Python (faaslab installed in it), from a
directory outside the repository, and is judged by what it prints: its own
output on stdout and nothing else, no DEBUG line anywhere.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def run(script: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for stream in (done.stdout, done.stderr):
        assert "debug" not in stream.lower(), stream
    return done


def test_the_readme_library_example_prints_only_its_own_line(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    (example,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "open_deployment" in block
    ]
    function = tmp_path / "fn"
    function.mkdir(mode=0o755)
    (function / "function.py").write_text("def handler(event):\n    return {'n': event['n']}\n")
    (function / "function.py").chmod(0o644)
    script = tmp_path / "readme_example.py"
    script.write_text(example.replace('"path/to/fn"', repr(str(function))))
    done = run(script, tmp_path)
    (line,) = done.stdout.splitlines()
    latency, cold, peak = line.split()
    assert float(latency) > 0
    assert cold == "True"
    assert int(peak) > 0
    # Only warnings reach stderr (the stdlib's last resort); the one this run
    # may see is a late 1 ms deadline on a loaded machine.
    warnings = done.stderr.splitlines()
    assert all(line.startswith("sampler.lagging ") for line in warnings), done.stderr
    assert (tmp_path / "memory_stats.json").is_file()


def test_the_benchmark_runner_writes_csv_only_on_stdout(tmp_path: Path) -> None:
    done = run(EXAMPLES / "benchmark_runner.py", tmp_path, "--calls", "6", "--concurrency", "3")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 2 * 6 + 1
    assert {row["function"] for row in rows} == {"echo", "alloc"}
    served = [row for row in rows if not row["error"]]
    assert all(float(row["latency_ms"]) > 0 and float(row["peak_mb"]) > 0 for row in served)
    (oom,) = [row for row in rows if row["error"]]
    assert "OOM-killed" in oom["error"]
    summary = done.stderr.strip().splitlines()[-1]
    assert "'InstanceExited': 1" in summary, summary
    assert "'InstanceReady': 1" in summary, summary


def test_several_deployments_in_one_loop(tmp_path: Path) -> None:
    lines = run(
        EXAMPLES / "many_deployments.py", tmp_path, "--deployments", "3"
    ).stdout.splitlines()
    assert len(lines) == 3
    assert all(line.split(": ", 1)[1].startswith("5 calls, 1 cold") for line in lines), lines


def test_cancellation_and_what_stop_returns(tmp_path: Path) -> None:
    out = run(EXAMPLES / "cancellation.py", tmp_path).stdout
    assert "1. cut short: True" in out
    assert "the next call works: {'bytes': 1048576}" in out
    assert "complete=True, 1 in memory_stats.json" in out
    assert "a second stop returns the same report: True, wrote again.json: False" in out
    assert re.search(r"3\. cancelled: True; \w+ left on the engine: False", out), out


def test_logs_routed_into_the_applications_logging(tmp_path: Path) -> None:
    done = run(EXAMPLES / "logging_into_app.py", tmp_path)
    assert done.stdout.strip() == (
        "faaslab events seen by the application: "
        "['deployment.stopped', 'instance.ready', 'instance.starting']"
    )
    lines = done.stderr.splitlines()
    assert any(
        line.startswith("app INFO faaslab._deployment._actor: instance.ready ") for line in lines
    )
    assert not any("faaslab._sampling" in line and " INFO " in line for line in lines)
