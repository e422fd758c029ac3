"""SeBS's commands refusing bad input: one line, exit 2, nothing started or written.

Each refusal happens before the engine is touched, so these run without one;
the checkout is a fake tree in ``tmp_path`` with faaslab's 110.dynamic-html.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import msgspec
import pytest

from faaslab._cli import main
from faaslab._cli._sebs_runs import batches_needed
from faaslab._sebs import RunType

DATA = Path(__file__).parent.parent / "data" / "sebs"


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(
        DATA / "110.dynamic-html", root / "benchmarks" / "100.webapps" / "110.dynamic-html"
    )
    (root / "configs").mkdir()
    shutil.copy(DATA / "configs" / "example.json", root / "configs" / "example.json")
    (root / "configs" / "broken.json").write_text('{"experiments": ')
    (root / "configs" / "no-experiments.json").write_text('{"deployment": {"name": "local"}}')
    monkeypatch.chdir(root)
    return root


START = "local start {benchmark} test out.json --config {config}"
INVOKE = "benchmark invoke 110.dynamic-html test --config configs/example.json"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            START.format(benchmark="110.dynamic-htlm", config="configs/example.json"),
            "benchmark '110.dynamic-htlm': not found in",
        ),
        (
            START.format(benchmark="dynamic-html", config="configs/example.json"),
            "close matches: 110.dynamic-html",
        ),
        (
            START.format(benchmark="110.dynamic-html", config="configs/broken.json"),
            "configs/broken.json: not JSON",
        ),
        (
            START.format(benchmark="110.dynamic-html", config="configs/no-experiments.json"),
            "no experiments section",
        ),
        (
            "experiment invoke perf-kost --config configs/example.json --deployment local",
            "unknown; SeBS's experiments are perf-cost",
        ),
        (
            "experiment invoke network-ping-pong --config configs/example.json",
            "not supported locally: it measures the network",
        ),
        ("experiment invoke eviction-model --config configs/example.json", "no eviction"),
        ("experiment invoke invocation-overhead --config configs/example.json", "clock"),
        (f"{INVOKE} --deployment aws", "--deployment aws: faaslab runs SeBS's local platform only"),
        (f"{INVOKE} --deployment nimbus", "unknown platform"),
        (f"{INVOKE} --architecture arm64", "does not emulate arm64"),
        (f"{INVOKE} --language java", "'java' is not supported"),
        (f"{INVOKE} --language-version 3.8", "python 3.8: not available in this build"),
        (f"{INVOKE} --trigger library", "HTTP triggers only"),
        (f"{INVOKE} --repetitions 0", "--repetitions 0: must be >= 1"),
        (f"{INVOKE} --container-deployment", "code packages only"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_started(
    checkout: Path, capsys: pytest.CaptureFixture[str], command: str, expected: str
) -> None:
    before = sorted(p.name for p in checkout.iterdir())
    assert main(command.split()) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("faaslab: error:")]
    assert len(errors) == 1, err
    assert expected in errors[0]
    assert "Traceback" not in err
    assert sorted(p.name for p in checkout.iterdir()) == before  # no out.json, no output dir


def test_perf_cost_without_its_section_is_refused(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads((checkout / "configs" / "example.json").read_text())
    del config["experiments"]["perf-cost"]
    (checkout / "configs" / "bare.json").write_text(json.dumps(config))
    assert main(["experiment", "invoke", "perf-cost", "--config", "configs/bare.json"]) == 2
    assert "experiments.perf-cost: missing" in capsys.readouterr().err


def test_process_without_results_says_what_to_run(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = "experiment process perf-cost --config configs/example.json --output-dir nothing"
    assert main(command.split()) == 2
    assert "run `experiment invoke perf-cost`" in capsys.readouterr().err


def test_ignored_options_are_said_to_be_ignored(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused later (an unknown benchmark), but the notes come first.
    command = (
        "local start 110.nothing test out.json --config configs/example.json --cache c "
        "--architecture x64"
    )
    assert main(command.split()) == 2
    err = capsys.readouterr().err
    assert "--cache: ignored" in err
    assert "--architecture x64: ignored" in err


@pytest.mark.parametrize(
    ("run_type", "expected"),
    [(RunType.COLD, 1 + 3), (RunType.WARM, 1 + 3), (RunType.SEQUENTIAL, 1 + 10)],
)
def test_batches_needed_counts_the_warm_up(run_type: RunType, expected: int) -> None:
    assert batches_needed(run_type, repetitions=10, concurrent_invocations=4) == expected


def test_a_named_store_becomes_external_storage_with_its_keys(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faaslab._cli._sebs import _storage
    from faaslab._sebs import load_config
    from faaslab._storage import ACCESS_KEY_ENV, SECRET_KEY_ENV

    monkeypatch.delenv(ACCESS_KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    store = {
        "object": {
            "type": "minio",
            "minio": {
                "address": "172.17.0.2:9000",
                "mapped_port": 9011,
                "access_key": "AK",
                "secret_key": "SK",
                "instance_id": "abc",
            },
        }
    }
    (checkout / "storage.json").write_text(json.dumps(store))
    config = load_config("configs/example.json", storage_configuration=["storage.json"])
    spec = _storage(config)
    assert (spec.kind, spec.endpoint, spec.function_address) == (
        "external",
        "http://127.0.0.1:9011",
        "172.17.0.2:9000",
    )
    assert (os.environ[ACCESS_KEY_ENV], os.environ[SECRET_KEY_ENV]) == ("AK", "SK")
    # SeBS's example config carries an empty template: faaslab starts its own store.
    assert _storage(load_config("configs/example.json")).kind == "seaweedfs"


def test_an_invocation_becomes_sebs_execution_result() -> None:
    from faaslab._function import Invocation, RemoteError
    from faaslab._sebs import from_invocation

    invocation = Invocation(
        request_id="r1",
        function="fn",
        instance="fn-0",
        container_id="c",
        is_cold=True,
        begin=1715000000.25,
        end=1715000000.2505,
        compute_time_us=480,
        client_send=1715000000.2,
        client_receive=1715000000.3,
        latency_s=0.1,
        output={"result": "page"},
        memory_peak_bytes=3 * 2**20,
        http_connect_s=0.001,
        http_first_byte_s=0.09,
    )
    result = from_invocation(invocation, memory_mb=128, init_us=400_000)
    assert result.stats.memory_used == 3.0
    assert result.stats.cold_start is True
    assert result.times.http_startup == 0.001
    assert result.times.http_first_byte_return == 0.09
    assert result.times.benchmark == 500
    assert result.provider_times.initialization == 400_000
    assert result.output["result"] == {"output": {"result": "page"}}
    assert result.output["instance"] == "fn-0"
    assert result.billing.memory == 128
    failed = from_invocation(
        msgspec.structs.replace(invocation, is_cold=False, error=RemoteError("ValueError", "x")),
        memory_mb=128,
        init_us=400_000,
    )
    assert failed.stats.failure is True
    assert failed.provider_times.initialization == 0  # warm: no start counted
    assert failed.output["error"]["type"] == "ValueError"
