"""SeBS's own commands, with ``sebs`` replaced by ``faaslab``, from a SeBS-like checkout.

The checkout (``benchmarks/100.webapps/110.dynamic-html``, ``configs/example.json``
with ``deployment.name = "local"``) is laid out in a temporary directory from
``tests/data/sebs``; its 110.dynamic-html is faaslab's re-creation of SeBS's
(Jinja2, installed by pip in a runtime container). Every command runs as a
user runs it: ``python -m faaslab ...`` in the checkout.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from faaslab._storage import open_s3_client

Leftovers = Callable[[str], Awaitable[list[str]]]

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DATA = Path(__file__).parent.parent / "data" / "sebs"
CSV_HEADER = "memory,type,is_cold,exec_time,connection_time,client_time,provider_time,mem_used"


Run = Callable[[str], subprocess.CompletedProcess[str]]


@pytest.fixture
def faaslab(checkout: Path, deployment_id: str) -> Run:
    """``faaslab("local start ...")``: the command run in the checkout, as a user types it.

    Its deployments are named ``<deployment_id>-<random>`` (SeBS's commands
    take no id), so that other test runs' leak checks know them as not theirs.
    """
    env = {**os.environ, "FAASLAB_ID_PREFIX": f"{deployment_id}-"}

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "faaslab", *shlex.split(command)],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            check=False,
        )

    return run


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory laid out like a SeBS checkout."""
    root = tmp_path / "serverless-benchmarks"
    shutil.copytree(
        DATA / "110.dynamic-html", root / "benchmarks" / "100.webapps" / "110.dynamic-html"
    )
    (root / "configs").mkdir()
    shutil.copy(DATA / "configs" / "example.json", root / "configs" / "example.json")
    return root


@pytest.fixture
def stopped_at_end(checkout: Path, faaslab: Run) -> Iterator[list[str]]:
    """Deployment files a test started: stopped afterwards, whatever happened."""
    files: list[str] = []
    yield files
    for name in files:
        if (checkout / name).exists():
            faaslab(f"local stop {name} cleanup_stats.json")


def _deployment_ids(*reports: Path) -> list[str]:
    return [json.loads(report.read_text())["deployment"] for report in reports]


async def _nothing_left(leftovers_of: Leftovers, ids: list[str]) -> None:
    for deployment_id in ids:
        assert await leftovers_of(deployment_id) == []


async def test_local_start_curl_stop(
    checkout: Path, faaslab: Run, leftovers_of: Leftovers, stopped_at_end: list[str]
) -> None:
    stopped_at_end.append("out_benchmark.json")
    started = faaslab(
        "local start 110.dynamic-html test out_benchmark.json --config configs/example.json "
        "--deployments 2 --remove-containers --architecture=x64 --measure-interval 1",
    )
    assert started.returncode == 0, started.stderr
    assert "--architecture x64: ignored" in started.stderr
    state = json.loads((checkout / "out_benchmark.json").read_text())
    assert len(state["functions"]) == 2
    assert state["functions"][0]["url"].startswith("127.0.0.1:")

    # SeBS's docs: curl $(jq -r .functions[0].url) --data $(jq -rc .inputs[0]) (curl adds http://).
    request = urllib.request.Request(
        "http://" + state["functions"][0]["url"],
        data=json.dumps(state["inputs"][0]).encode(),
        headers={"Content-Type": "application/json"},
    )
    def post() -> dict[str, Any]:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    answer = await anyio.to_thread.run_sync(post)
    assert {"begin", "end", "request_id", "is_cold", "result"} <= answer.keys()
    html = answer["result"]["output"]["result"]
    assert "Welcome testname!" in html
    assert html.count("<li>") == 10  # the test size's random_len

    stopped = faaslab("local stop out_benchmark.json")
    assert stopped.returncode == 0, stopped.stderr
    stats = json.loads((checkout / "memory_stats.json").read_text())
    containers = [key for key in stats if key != "precision_errors"]
    assert sorted(containers) == sorted(f["instance_id"] for f in state["functions"])
    for container in containers:
        assert stats[container]["number of measurements"] > 0
        assert stats[container]["max mem. usage"].endswith(" MB")
    await _nothing_left(leftovers_of, [state["id"]])


async def test_benchmark_invoke_writes_experiments_json(
    checkout: Path, faaslab: Run, leftovers_of: Leftovers
) -> None:
    result = faaslab(
        "benchmark invoke 110.dynamic-html test --config configs/example.json "
        "--deployment local --repetitions 3 --output-dir bench-out",
    )
    assert result.returncode == 0, result.stderr
    out = checkout / "bench-out"
    experiments = json.loads((out / "experiments.json").read_text())
    assert {"config", "begin_time", "end_time", "result_bucket", "_invocations", "_metrics"} == (
        experiments.keys()
    )
    assert experiments["config"]["deployment"]["name"] == "local"
    # Keyed by request id and written with sorted keys (as SeBS writes): in time order again.
    calls = sorted(
        experiments["_invocations"]["110.dynamic-html"].values(),
        key=lambda call: call["times"]["client_begin"],
    )
    assert len(calls) == 3
    # The truth about cold starts: one instance, so its first call only.
    assert [call["stats"]["cold_start"] for call in calls] == [True, False, False]
    for call in calls:
        assert call["stats"]["failure"] is False
        assert call["stats"]["memory_used"] > 1  # MiB: a Python interpreter and Jinja2
        times = call["times"]
        assert 0 <= times["http_startup"] <= times["http_first_byte_return"]
        assert times["http_first_byte_return"] * 1e6 <= times["client"] + 1
        assert times["benchmark"] > 0
        assert call["billing"]["_memory"] == 128
        assert "Welcome testname!" in call["output"]["result"]["output"]["result"]
    assert calls[0]["provider_times"]["initialization"] > 0  # the cold call's start
    stats = json.loads((out / "memory_stats.json").read_text())
    assert len([key for key in stats if key != "precision_errors"]) == 1
    await _nothing_left(leftovers_of, _deployment_ids(out / "memory_report.json"))


async def test_perf_cost_invoke_then_process(
    checkout: Path, faaslab: Run, leftovers_of: Leftovers
) -> None:
    invoked = faaslab(
        "experiment invoke perf-cost --config configs/example.json --deployment local "
        "--output-dir perf",
    )
    assert invoked.returncode == 0, invoked.stderr
    processed = faaslab(
        "experiment process perf-cost --config configs/example.json --deployment local "
        "--output-dir perf",
    )
    assert processed.returncode == 0, processed.stderr
    directory = checkout / "perf" / "perf-cost"
    text = (directory / "result.csv").read_text()
    assert text.splitlines()[0] == CSV_HEADER
    rows = list(csv.DictReader(text.splitlines()))
    by_kind: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        by_kind.setdefault((row["memory"], row["type"]), []).append(row)
    # repetitions 2 of cold and warm at 128 and 256 MB (configs/example.json).
    assert sorted(by_kind) == [("128", "cold"), ("128", "warm"), ("256", "cold"), ("256", "warm")]
    for (_, kind), members in by_kind.items():
        assert len(members) == 2
        assert {row["is_cold"] for row in members} == {"True" if kind == "cold" else "False"}
        assert all(float(row["mem_used"]) > 0 for row in members)
    for memory in (128, 256):
        cold = json.loads((directory / f"cold_results_{memory}.json").read_text())
        assert cold["statistics"]["cold_count"] == 2
        assert cold["statistics"]["incorrect_count"] == 0
        billed = next(iter(cold["_invocations"]["110.dynamic-html"].values()))["billing"]
        assert billed["_memory"] == memory
    reports = sorted(directory.glob("memory_stats_*.report.json"))
    assert len(reports) == 2
    await _nothing_left(leftovers_of, _deployment_ids(*reports))


async def test_perf_cost_burst_and_sequential_without_memory_sizes(
    checkout: Path, faaslab: Run, leftovers_of: Leftovers
) -> None:
    config = json.loads((checkout / "configs" / "example.json").read_text())
    settings = config["experiments"]["perf-cost"]
    settings["experiments"] = ["burst", "sequential"]
    settings["memory-sizes"] = []  # the benchmark's own memory, files without _<memory>
    (checkout / "configs" / "all.json").write_text(json.dumps(config))
    for verb in ("invoke", "process"):
        result = faaslab(f"experiment {verb} perf-cost --config configs/all.json --output-dir all"
        )
        assert result.returncode == 0, result.stderr
    directory = checkout / "all" / "perf-cost"
    burst = json.loads((directory / "burst_results.json").read_text())["statistics"]
    sequential = json.loads((directory / "sequential_results.json").read_text())["statistics"]
    # burst: every batch on fresh instances; sequential: warmed up, then one at a time.
    assert (burst["samples_generated"], burst["cold_count"]) == (2, 2)
    assert (sequential["samples_generated"], sequential["cold_count"]) == (2, 0)
    rows = list(csv.DictReader((directory / "result.csv").read_text().splitlines()))
    assert {(row["memory"], row["type"]) for row in rows} == {("0", "burst"), ("0", "sequential")}
    await _nothing_left(leftovers_of, _deployment_ids(directory / "memory_report.json"))


async def test_local_start_uses_the_store_its_storage_configuration_names(
    checkout: Path, faaslab: Run, stopped_at_end: list[str]
) -> None:
    # The store of a first deployment stands for one `sebs storage start` made.
    stopped_at_end.extend(["store.json", "out.json"])
    first = faaslab("local start 110.dynamic-html test store.json --config configs/example.json")
    assert first.returncode == 0, first.stderr
    store = json.loads((checkout / "store.json").read_text())["storage"]
    described = {"object": {"type": "minio", "minio": store}}
    (checkout / "out_storage.json").write_text(json.dumps(described))

    second = faaslab(
        "local start 110.dynamic-html test out.json --config configs/example.json "
        "--storage-configuration out_storage.json"
    )
    assert second.returncode == 0, second.stderr
    state = json.loads((checkout / "out.json").read_text())
    assert state["storage"]["kind"] == "external"
    assert state["storage"]["address"] == store["address"]  # 127.0.0.1:<mapped_port>
    # Its inputs went to that store: the second deployment made its bucket there.
    async with open_s3_client(store["address"], store["access_key"], store["secret_key"]) as s3:
        assert await s3.bucket_exists(state["storage"]["benchmarks_bucket"])
    for name in ("out.json", "store.json"):
        assert faaslab(f"local stop {name}").returncode == 0
