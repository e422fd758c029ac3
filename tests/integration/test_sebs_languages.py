"""SeBS-shaped benchmarks in Node.js and Python through the command line, as a SeBS user runs them.

``faaslab start DIR [--language nodejs] --size test``, ``invoke --input 0
--validate`` (each benchmark's own ``validate_output``), ``stop`` with memory
statistics. The directories under tests/data/sebs are faaslab's re-creations
of SeBS's (010.sleep, 110.dynamic-html, 210.thumbnailer, 311.compression,
501-503.graph-*), with their real dependencies (mustache, sharp, uuid, igraph).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SEBS = Path(__file__).parents[1] / "data" / "sebs"
DATA = SEBS / "benchmarks-data"


def faaslab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
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
    """State files of deployments a test started; stopped afterwards whatever happened."""
    files: list[Path] = []
    yield files
    for path in files:
        if path.exists():
            faaslab("stop", str(path), str(tmp_path / "cleanup_stats.json"))


def run_benchmarks(
    tmp_path: Path,
    deployment_id: str,
    started: list[Path],
    benchmarks: list[str],
    *options: str,
) -> dict[str, dict[str, object]]:
    """Start the benchmarks in one deployment, invoke each with input 0 and validate, stop."""
    out = tmp_path / f"{deployment_id}.json"
    started.append(out)
    start = faaslab(
        "start",
        *(str(SEBS / name) for name in benchmarks),
        "--size",
        "test",
        "--measure-interval",
        "1",
        "--id",
        deployment_id,
        "-o",
        str(out),
        *options,
    )
    assert start.returncode == 0, start.stderr
    answers = {}
    for name in benchmarks:
        invoked = faaslab("invoke", str(out), name, "--input", "0", "--validate")
        answer = json.loads(invoked.stdout.splitlines()[-1])
        assert invoked.returncode == 0, answer
        assert answer["validation"] == {"status": "valid", "reason": None}, (name, answer)
        assert answer["is_cold"] is True
        answers[name] = answer
    stats = tmp_path / f"{deployment_id}-memory_stats.json"
    stopped = faaslab("stop", str(out), str(stats))
    assert stopped.returncode == 0, stopped.stderr
    written = json.loads(stats.read_text())
    written.pop("precision_errors")
    assert set(written) == {answer["container_id"] for answer in answers.values()}
    for container in written.values():
        assert container["number of measurements"] > 0
        assert float(container["max mem. usage"].removesuffix(" MB")) > 1
    return answers


def test_nodejs_microbenchmark_and_webapp(
    tmp_path: Path, deployment_id: str, started: list[Path]
) -> None:
    answers = run_benchmarks(
        tmp_path,
        deployment_id,
        started,
        ["010.sleep", "110.dynamic-html"],
        "--language",
        "nodejs",
    )
    assert answers["010.sleep"]["output"] is None  # SeBS's Node.js sleep returns nothing
    assert answers["010.sleep"]["end"] - answers["010.sleep"]["begin"] >= 1.0
    assert "Welcome testname!" in answers["110.dynamic-html"]["output"]


def test_nodejs_thumbnailer_with_sharp_from_the_registry(
    tmp_path: Path, deployment_id: str, started: list[Path]
) -> None:
    # package.json.18 (sharp 0.33: prebuilt libvips on the npm registry) is picked
    # for Node 18 over package.json (sharp 0.25, whose install downloads from GitHub).
    answers = run_benchmarks(
        tmp_path,
        deployment_id,
        started,
        ["210.thumbnailer"],
        "--language",
        "nodejs",
        "--language-version",
        "18",
        "--data-dir",
        str(DATA / "210.thumbnailer"),
    )
    assert answers["210.thumbnailer"]["output"]["key"].endswith(".png")


def test_nodejs_compression_downloads_a_directory(
    tmp_path: Path, deployment_id: str, started: list[Path]
) -> None:
    answers = run_benchmarks(
        tmp_path,
        deployment_id,
        started,
        ["311.compression"],
        "--language",
        "nodejs",
        "--data-dir",
        str(DATA / "311.compression"),
    )
    measurement = answers["311.compression"]["output"]["measurement"]
    assert measurement["download_size"] > 3000


def test_nodejs_crud_api_over_nosql(
    tmp_path: Path, deployment_id: str, started: list[Path]
) -> None:
    # SeBS's nosql.js contract (aws-sdk's DocumentClient) against the deployment's
    # dynalite, its table filled by input.py's nosql_upload; judged by validate_output.
    answers = run_benchmarks(
        tmp_path, deployment_id, started, ["130.crud-api"], "--language", "nodejs"
    )
    (product,) = answers["130.crud-api"]["output"]["result"]
    assert (product["name"], product["price"], product["quantity"]) == ("Gothic Game", 42, 2)


def test_python_graph_benchmarks_with_igraph(
    tmp_path: Path, deployment_id: str, started: list[Path]
) -> None:
    # igraph's manylinux wheel links libstdc++.so.6, which the Python image now carries.
    answers = run_benchmarks(
        tmp_path,
        deployment_id,
        started,
        ["501.graph-pagerank", "502.graph-mst", "503.graph-bfs"],
    )
    assert answers["501.graph-pagerank"]["output"]["result"] == pytest.approx(0.1)


def test_a_benchmark_without_the_language_is_refused(tmp_path: Path, deployment_id: str) -> None:
    refused = faaslab(
        "start", str(SEBS / "311.compression"), "--id", deployment_id,
        "-o", str(tmp_path / "out.json"),
    )  # fmt: skip
    assert refused.returncode == 2
    assert "has no python/function.py" in refused.stderr
    version = faaslab(
        "start", str(SEBS / "010.sleep"), "--language", "nodejs", "--language-version", "20",
        "--id", deployment_id, "-o", str(tmp_path / "out.json"),
    )  # fmt: skip
    assert version.returncode == 2
    assert "nodejs runtime is 18" in version.stderr
    assert deployment_id not in faaslab("ps").stdout
