"""SeBS config files and benchmark names without an engine: parsing, merging, every refusal.

The config below has the shape of SeBS's ``configs/python.json``; the
benchmark checkouts are fake trees in ``tmp_path``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from faaslab._errors import SpecError
from faaslab._sebs import (
    UNSUPPORTED_EXPERIMENTS,
    MinioStorage,
    Runtime,
    RunType,
    benchmark_roots,
    check_deployment,
    check_experiment,
    find_benchmark,
    list_benchmarks,
    load_config,
    load_storage,
    parse_config,
    result_config,
)

MINIO = {
    "address": "172.17.0.2:9000",
    "mapped_port": 9011,
    "access_key": "ak",
    "secret_key": "sk",
    "instance_id": "c0ffee",
    "output_buckets": [],
    "input_buckets": [],
    "version": "RELEASE.2024-07-16T23-46-41Z",
    "data_volume": "minio-volume",
    "type": "minio",
}
SCYLLA = {
    "address": "172.17.0.3:8000",
    "mapped_port": 9012,
    "alternator_port": 8000,
    "access_key": "None",
    "secret_key": "None",
    "instance_id": "beef",
    "region": "None",
    "cpus": 1,
    "memory": "750",
    "version": "6.0",
    "data_volume": "scylladb-volume",
}
CONFIG: dict[str, Any] = {
    "experiments": {
        "deployment": "aws",
        "update_code": False,
        "update_storage": False,
        "download_results": False,
        "architecture": "x64",
        "container_deployment": False,
        "runtime": {"language": "python", "version": "3.11"},
        "type": "invocation-overhead",
        "perf-cost": {
            "benchmark": "110.dynamic-html",
            "experiments": ["cold", "warm", "burst", "sequential"],
            "input-size": "test",
            "repetitions": 50,
            "concurrent-invocations": 50,
            "memory-sizes": [128, 256],
        },
        "network-ping-pong": {"invocations": 50, "repetitions": 1000, "threads": 1},
    },
    "deployment": {
        "name": "local",
        "aws": {"region": "us-east-1"},
        "local": {
            "storage": {
                "object": {"type": "minio", "minio": MINIO},
                "nosql": {"type": "scylladb", "scylladb": SCYLLA},
            }
        },
    },
}


def config(**changes: Any) -> dict[str, Any]:
    """CONFIG with ``changes`` applied: ``{"experiments.perf-cost.repetitions": 0}``-style keys."""
    data = copy.deepcopy(CONFIG)
    for dotted, value in changes.items():
        *parents, last = dotted.replace("__", "-").split(".")
        node = data
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


def refused(data: object, match: str, **overrides: Any) -> str:
    with pytest.raises(SpecError, match=match) as caught:
        parse_config(data, source="cfg.json", **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def perf_cost_refused(match: str, **changes: Any) -> None:
    parsed = parse_config(config(**changes), source="cfg.json")
    with pytest.raises(SpecError, match=match) as caught:
        parsed.perf_cost()
    assert "\n" not in str(caught.value)


# -- a good config ------------------------------------------------------------


def test_reads_sebs_config(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(CONFIG, indent=2))
    parsed = load_config(path)
    assert parsed.source == str(path)
    assert parsed.deployment == "local"
    assert parsed.experiments.runtime == Runtime("python", "3.11")
    assert parsed.experiments.architecture == "x64"
    assert set(parsed.experiments.sections) == {"perf-cost", "network-ping-pong"}
    perf_cost = parsed.perf_cost()
    assert perf_cost.benchmark == "110.dynamic-html"
    assert perf_cost.experiments == tuple(RunType)
    assert (perf_cost.input_size, perf_cost.repetitions) == ("test", 50)
    assert (perf_cost.concurrent_invocations, perf_cost.memory_sizes) == (50, (128, 256))


def test_storage_as_sebs_storage_start_writes_it() -> None:
    storage = parse_config(CONFIG).storage
    assert storage is not None
    assert storage.object is not None
    assert storage.nosql is not None
    assert storage.object == MinioStorage(**MINIO)
    assert storage.object.host_endpoint == "127.0.0.1:9011"
    assert (storage.object.access_key, storage.object.secret_key) == ("ak", "sk")
    assert storage.nosql.host_endpoint == "127.0.0.1:9012"
    assert storage.nosql.memory == "750"


def test_old_flat_storage_and_the_empty_template() -> None:
    flat = parse_config(config(**{"deployment.local.storage": MINIO})).storage
    assert flat is not None
    assert flat.object is not None
    assert flat.nosql is None
    assert flat.object.address == "172.17.0.2:9000"
    # SeBS's configs/example.json ships this template: it names no store.
    template = {**MINIO, "address": "", "mapped_port": -1, "access_key": "", "secret_key": ""}
    assert parse_config(config(**{"deployment.local.storage": template})).storage is None
    empty_object = {"object": {"type": "minio", "minio": {"address": ""}}}
    assert parse_config(config(**{"deployment.local.storage": empty_object})).storage is None
    assert parse_config(config(**{"deployment.local": ...})).storage is None


def test_storage_configuration_file_replaces_the_configs_storage(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config(**{"deployment.local.storage": {"object": "broken"}})))
    out_storage = tmp_path / "out_storage.json"
    out_storage.write_text(json.dumps({"object": {"type": "minio", "minio": MINIO}}))
    parsed = load_config(cfg, storage_configuration=out_storage)
    assert parsed.storage is not None
    assert parsed.storage.object == MinioStorage(**MINIO)
    assert parsed.storage.nosql is None
    assert load_storage(out_storage) == parsed.storage
    out_storage.write_text(json.dumps({"object": {"type": "minio", "minio": {"mapped_port": "x"}}}))
    with pytest.raises(
        SpecError,
        match=r"out_storage\.json: object\.minio: Expected `int`, got `str` - at `\$\.mapped_port`",
    ):
        load_storage(out_storage)
    out_storage.write_text("[]")
    with pytest.raises(SpecError, match=r"out_storage\.json: must be a JSON object, not an array$"):
        load_storage(out_storage)
    with pytest.raises(SpecError, match=r"cfg.json: deployment.local.storage.object: must be"):
        load_config(cfg)


def test_host_endpoint_without_a_published_port_is_the_address() -> None:
    assert MinioStorage(address="10.0.0.5:9000").host_endpoint == "10.0.0.5:9000"


def test_defaults_when_the_config_leaves_things_out() -> None:
    parsed = parse_config({"experiments": {}})
    assert parsed.deployment == "local"
    assert parsed.storage is None
    experiments = parsed.experiments
    assert experiments.runtime == Runtime("python", "3.11")
    assert (experiments.architecture, experiments.flags) == ("x64", {})
    switches = (experiments.update_code, experiments.update_storage, experiments.download_results)
    assert switches == (False, False, False)
    assert experiments.container_deployment is False
    nodejs = parse_config({"experiments": {"runtime": {"language": "nodejs"}}})
    assert nodejs.experiments.runtime == Runtime("nodejs", "18")


def test_command_line_overrides_replace_key_by_key() -> None:
    parsed = parse_config(
        CONFIG, language="python", language_version="3.9", architecture="arm64", deployment="local"
    )
    assert parsed.experiments.runtime == Runtime("python", "3.9")
    assert parsed.experiments.architecture == "arm64"
    both = parse_config(CONFIG, language="nodejs", language_version="20")
    assert both.experiments.runtime == Runtime("nodejs", "20")
    # deployment.name aws in the file, --deployment local on the command line: local.
    assert parse_config(config(**{"deployment.name": "aws"}), deployment="local").deployment == (
        "local"
    )


def test_result_config_echoes_sebs_serialized_configs() -> None:
    echo = result_config(parse_config(CONFIG, language_version="3.10"))
    assert set(echo.experiments) == {
        "update_code",
        "update_storage",
        "download_results",
        "runtime",
        "flags",
        "experiments",
        "architecture",
        "container_deployment",
    }
    assert echo.experiments["runtime"] == {"language": "python", "version": "3.10"}
    assert set(echo.experiments["experiments"]) == {"perf-cost", "network-ping-pong"}
    assert echo.deployment == {
        "name": "local",
        "region": "",
        "resources": {"storage": MINIO, "nosql": SCYLLA, "allocated_ports": []},
    }
    bare = result_config(parse_config({"experiments": {}}))
    assert bare.deployment["resources"] == {"allocated_ports": []}


# -- bad files ----------------------------------------------------------------


def test_a_file_that_is_not_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text('{\n  "experiments": {,\n}\n')
    with pytest.raises(SpecError, match=r"cfg.json: not JSON: .* \(line 2, column 19\)$"):
        load_config(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(SpecError, match="not JSON: not UTF-8"):
        load_config(path)
    with pytest.raises(SpecError, match=r"missing\.json: cannot read it"):
        load_config(tmp_path / "missing.json")


def test_not_an_object_and_no_experiments() -> None:
    refused([1, 2], r"^cfg.json: must be a JSON object, not an array$")
    refused({"deployment": {}}, r"^cfg.json: no experiments section; a SeBS config has")
    refused({"experiments": "perf-cost"}, r"^cfg.json: experiments: must be a JSON object")


def test_only_the_local_platform() -> None:
    refused(
        config(**{"deployment.name": "aws"}),
        r"^cfg.json: deployment.name aws: faaslab runs SeBS's local platform only",
    )
    refused(CONFIG, r"^--deployment aws: faaslab runs SeBS's local platform only", deployment="aws")
    refused(CONFIG, r"^--deployment 'mars': unknown platform", deployment="mars")
    with pytest.raises(SpecError, match=r"--deployment gcp: .* use SeBS itself for gcp"):
        check_deployment("gcp")
    check_deployment("local")


def test_runtime_refusals() -> None:
    refused(CONFIG, r"^--language: 'java'; faaslab runs python and nodejs$", language="java")
    refused(
        config(**{"experiments.runtime.language": "cpp"}),
        r"^cfg.json: experiments.runtime.language: 'cpp'; faaslab runs python and nodejs$",
    )
    # --language nodejs keeps the file's Python version, as SeBS's merge does: refused.
    message = refused(
        CONFIG, r"experiments.runtime.version: '3.11' is not a nodejs version", language="nodejs"
    )
    assert message.endswith("pass --language-version")
    refused(CONFIG, r"^--language-version: '3' is not a python version", language_version="3")
    refused(config(**{"experiments.runtime.version": 3.11}), r"runtime.version: 3.11 is not")
    refused(CONFIG, r"^--architecture: 'riscv'; one of x64, arm64$", architecture="riscv")
    refused(config(**{"experiments.architecture": "x86"}), r"experiments.architecture: 'x86'")


def test_switch_refusals() -> None:
    refused(config(**{"experiments.update_code": "yes"}), r"experiments.update_code: 'yes'; true")
    refused(
        config(**{"experiments.container_deployment": True}),
        r"container_deployment: true; SeBS's local platform deploys code packages only",
    )
    refused(config(**{"experiments.flags": {"a": 1}}), r"experiments.flags.a: 1; true or false")


def test_storage_refusals() -> None:
    refused(
        config(**{"deployment.local.storage": {"object": {"type": "s3", "s3": {}}}}),
        r"storage.object.type: 's3'; SeBS's local platform knows minio only$",
    )
    refused(
        config(**{"deployment.local.storage.object.minio": {**MINIO, "mapped_port": "9011"}}),
        r"storage.object.minio: Expected `int`, got `str` - at `\$.mapped_port`$",
    )
    refused(config(**{"deployment.local.storage": []}), r"storage: must be a JSON object")


def test_perf_cost_refusals() -> None:
    perf_cost_refused(
        r"^cfg.json: experiments.perf-cost: missing;", **{"experiments.perf-cost": ...}
    )
    perf_cost_refused(
        r"perf-cost.experiments: 'hot' is not a perf-cost experiment type; "
        r"SeBS's are cold, warm, burst, sequential$",
        **{"experiments.perf-cost.experiments": ["cold", "hot"]},
    )
    perf_cost_refused(
        r"experiments: \[\]; a non-empty list", **{"experiments.perf-cost.experiments": []}
    )
    perf_cost_refused(
        r"names a type twice", **{"experiments.perf-cost.experiments": ["warm", "warm"]}
    )
    for bad in (0, -1, True, "5", 2.5):
        perf_cost_refused(
            r"perf-cost.repetitions: .*; a positive integer is needed$",
            **{"experiments.perf-cost.repetitions": bad},
        )
        perf_cost_refused(
            r"perf-cost.concurrent-invocations: .*; a positive integer is needed$",
            **{"experiments.perf-cost.concurrent__invocations": bad},
        )
    for bad_sizes in ([128, 0], [128, "256"], "128", [True]):
        perf_cost_refused(
            r"perf-cost.memory-sizes: .*; a list of positive integers \(MB\) is needed$",
            **{"experiments.perf-cost.memory__sizes": bad_sizes},
        )
    perf_cost_refused(r"names a size twice", **{"experiments.perf-cost.memory__sizes": [128, 128]})
    perf_cost_refused(
        r"perf-cost.input-size: 'huge'; one of test, small, large$",
        **{"experiments.perf-cost.input__size": "huge"},
    )
    perf_cost_refused(r"perf-cost.benchmark: ''", **{"experiments.perf-cost.benchmark": ""})
    perf_cost_refused(
        r"^cfg.json: experiments.perf-cost.repetitions: missing$",
        **{"experiments.perf-cost.repetitions": ...},
    )


def test_no_memory_sizes_is_allowed_as_in_sebs() -> None:
    parsed = parse_config(config(**{"experiments.perf-cost.memory__sizes": []}))
    assert parsed.perf_cost().memory_sizes == ()


# -- experiment names ---------------------------------------------------------


def test_experiment_names() -> None:
    assert check_experiment("perf-cost") == "perf-cost"
    for name, reason in UNSUPPORTED_EXPERIMENTS.items():
        with pytest.raises(SpecError) as caught:
            check_experiment(name)
        assert str(caught.value) == f"experiment {name}: not supported locally: {reason}"
    assert set(UNSUPPORTED_EXPERIMENTS) == {
        "network-ping-pong",
        "invocation-overhead",
        "eviction-model",
    }
    with pytest.raises(
        SpecError,
        match=r"^experiment 'perf-cots': unknown; SeBS's experiments "
        r"are perf-cost, .*\(did you mean perf-cost\?\)$",
    ):
        check_experiment("perf-cots")
    with pytest.raises(SpecError, match=r"'warmup': unknown; .*eviction-model$"):
        check_experiment("warmup")


# -- benchmark lookup ---------------------------------------------------------


def checkout(root: Path, *benchmarks: str) -> Path:
    """A fake SeBS checkout: ``group/name`` entries under ``root/benchmarks``."""
    for entry in benchmarks:
        directory = root / "benchmarks" / entry
        directory.mkdir(parents=True)
        (directory / "config.json").write_text('{"timeout": 10, "memory": 128}')
    return root


@pytest.fixture
def sebs(tmp_path: Path) -> Path:
    root = checkout(
        tmp_path / "sebs",
        "100.webapps/110.dynamic-html",
        "100.webapps/120.uploader",
        "200.multimedia/210.thumbnailer",
        "300.utilities/311.compression",
    )
    (root / "benchmarks" / "300.utilities" / "wrappers").mkdir()  # no config.json: not one
    return root


def test_finds_a_name_under_benchmarks_group_name(sebs: Path) -> None:
    found = find_benchmark("210.thumbnailer", [sebs])
    assert found == sebs / "benchmarks" / "200.multimedia" / "210.thumbnailer"
    assert set(list_benchmarks([sebs])) == {
        "110.dynamic-html",
        "120.uploader",
        "210.thumbnailer",
        "311.compression",
    }


def test_the_current_directory_comes_first(
    sebs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = checkout(tmp_path / "here", "900.mine/110.dynamic-html")
    monkeypatch.chdir(here)
    roots = benchmark_roots(sebs)
    assert roots == (here, sebs)
    assert find_benchmark("110.dynamic-html", roots) == (
        here / "benchmarks" / "900.mine" / "110.dynamic-html"
    )
    assert find_benchmark("120.uploader", roots).parent.name == "100.webapps"
    assert benchmark_roots() == (here,)


def test_a_directory_is_taken_as_it_is(
    sebs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = sebs / "benchmarks" / "100.webapps" / "120.uploader"
    assert find_benchmark(directory, []) == directory
    monkeypatch.chdir(directory.parent)
    assert find_benchmark("120.uploader", []) == directory  # a relative directory
    with pytest.raises(SpecError, match=r"wrappers: not a SeBS benchmark directory \(it has no"):
        find_benchmark(sebs / "benchmarks" / "300.utilities" / "wrappers", [sebs])
    with pytest.raises(SpecError, match=r"^nowhere/110.dynamic-html: no such benchmark directory$"):
        find_benchmark("nowhere/110.dynamic-html", [sebs])


@pytest.mark.parametrize(
    ("query", "suggested"),
    [
        ("dynamic-html", "110.dynamic-html"),
        ("110", "110.dynamic-html"),
        ("111.dynamic-html", "110.dynamic-html"),
        ("110.dynamic-htm", "110.dynamic-html"),
        ("thumbnail", "210.thumbnailer"),
        ("compresion", "311.compression"),
    ],
)
def test_an_unknown_name_lists_close_matches(sebs: Path, query: str, suggested: str) -> None:
    with pytest.raises(SpecError) as caught:
        find_benchmark(query, [sebs])
    message = str(caught.value)
    assert message.startswith(f"benchmark {query!r}: not found in {sebs / 'benchmarks'}; close")
    assert suggested in message.partition("close matches: ")[2].split(", ")
    assert "\n" not in message


def test_an_unknown_name_with_nothing_close(sebs: Path) -> None:
    with pytest.raises(
        SpecError, match=r"'zzz': not found in .* \(4 benchmarks there, none close\)$"
    ):
        find_benchmark("zzz", [sebs])


def test_no_checkout_at_all(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError,
        match=r"'110.dynamic-html': not found: no benchmarks/<group>/<name> directories in .*; "
        r"run from a SeBS checkout, pass --benchmarks-root",
    ):
        find_benchmark("110.dynamic-html", [tmp_path])
