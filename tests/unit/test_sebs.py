"""SeBS benchmark directories without an engine: loading, packaging, inputs, validation.

The benchmark directories under tests/data/sebs are written for faaslab in
SeBS's layout; a small in-memory storage stands in for S3.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import pytest

from faaslab._errors import SpecError
from faaslab._sebs._benchmark import (
    PACKAGE_MARKER,
    SebsBenchmark,
    Verdict,
    build_package,
    generate_inputs,
    is_sebs_benchmark,
    load_benchmark,
    validate,
)

DATA = Path(__file__).parent.parent / "data" / "sebs"
ROUNDTRIP = DATA / "900.storage-roundtrip"
REQUIREMENT = DATA / "910.requirement"
ROUNDTRIP_DATA = DATA / "benchmarks-data" / "900.storage-roundtrip"


class MemoryStorage:
    """The storage calls input generation and validation make, in memory."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.buckets: set[str] = set()
        self.recorded: tuple[str, list[str], list[str]] | None = None

    def benchmarks_bucket_name(self) -> str:
        return "faaslab-benchmarks-test"

    def record_benchmark_buckets(self, bucket: str, inputs: list[str], outputs: list[str]) -> None:
        self.recorded = (bucket, inputs, outputs)

    async def create_bucket(self, bucket: str) -> None:
        self.buckets.add(bucket)

    async def bucket_exists(self, bucket: str) -> bool:
        return bucket in self.buckets

    async def upload_file(self, bucket: str, key: str, path: Path | str) -> None:
        assert bucket in self.buckets
        self.objects[bucket, key] = Path(path).read_bytes()

    async def download_file(self, bucket: str, key: str, path: Path | str) -> None:
        Path(path).write_bytes(self.objects[bucket, key])

    async def list_objects(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))


def copy_benchmark(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


# -- loading ------------------------------------------------------------------


def test_is_sebs_benchmark(tmp_path: Path) -> None:
    assert is_sebs_benchmark(ROUNDTRIP)
    assert is_sebs_benchmark(REQUIREMENT)
    assert not is_sebs_benchmark(tmp_path)
    (tmp_path / "function.py").write_text("def handler(event):\n    return {}\n")
    assert not is_sebs_benchmark(tmp_path)  # a plain function directory


def test_load_reads_config_requirements_and_input_module() -> None:
    benchmark = load_benchmark(REQUIREMENT, size="small")
    assert benchmark.name == "910.requirement"
    assert (benchmark.memory_mb, benchmark.timeout_s) == (96, 20.0)
    # requirements.txt.3.11 wins over requirements.txt, as in SeBS for Python 3.11.
    assert benchmark.requirements == REQUIREMENT.resolve() / "python" / "requirements.txt.3.11"
    assert benchmark.buckets == (0, 0)
    assert benchmark.can_generate_input
    assert benchmark.can_validate
    assert benchmark.size == "small"


def test_reading_data_dir_without_one_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"--data-dir DIR .*benchmarks-data/900\.storage-roundtrip"):
        load_benchmark(ROUNDTRIP)
    with pytest.raises(SpecError, match=r"data_dir: .* is not a directory"):
        load_benchmark(ROUNDTRIP, data_dir=tmp_path / "missing")
    loaded = load_benchmark(ROUNDTRIP, data_dir=ROUNDTRIP_DATA)
    assert loaded.buckets == (1, 1)
    assert loaded.requirements is None


def test_nosql_benchmarks_are_loaded_with_their_tables(tmp_path: Path) -> None:
    by_input = copy_benchmark(REQUIREMENT, tmp_path / "a")
    append(
        by_input / "input.py", "\n\ndef allocate_nosql():\n    return {'t': {'primary_key': 'k'}}\n"
    )
    loaded = load_benchmark(by_input)
    assert loaded.nosql_tables == {"t": ("k", None)}
    assert loaded.needs_nosql

    by_config = copy_benchmark(REQUIREMENT, tmp_path / "b")
    (by_config / "config.json").write_text(
        '{"timeout": 5, "memory": 128, "languages": ["python"], "modules": ["nosql"]}'
    )
    loaded = load_benchmark(by_config)
    assert loaded.modules == {"nosql"}
    assert loaded.nosql_tables == {}
    assert loaded.needs_nosql
    assert not load_benchmark(REQUIREMENT).needs_nosql


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"timeout": 5, "memory": "lots", "languages": ["python"]}', "memory"),
        ('{"timeout": 0, "memory": 128, "languages": ["python"]}', "timeout"),
        ('{"timeout": 5, "memory": 128, "languages": ["nodejs"]}', "not available in python"),
        ("not json", "JSON"),
    ],
)
def test_bad_config_json_names_the_field(tmp_path: Path, config: str, message: str) -> None:
    benchmark = copy_benchmark(REQUIREMENT, tmp_path)
    (benchmark / "config.json").write_text(config)
    with pytest.raises(SpecError, match=message):
        load_benchmark(benchmark)


def test_input_py_importing_what_the_host_lacks(tmp_path: Path) -> None:
    benchmark = copy_benchmark(REQUIREMENT, tmp_path)
    input_py = benchmark / "input.py"
    input_py.write_text("import faaslab_absent_module\n" + input_py.read_text())
    with pytest.raises(SpecError, match="faaslab_absent_module"):
        load_benchmark(benchmark)


# -- packaging ----------------------------------------------------------------


def test_package_has_python_files_and_init_sh_output(tmp_path: Path) -> None:
    package = build_package(ROUNDTRIP, tmp_path / "pkg")
    files = sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file())
    # *.py of python/ (init.sh itself is not copied), then what init.sh copied; no storage.py.
    assert files == [PACKAGE_MARKER, "function.py", "templates/banner.txt"]
    for path in [package, *package.rglob("*")]:
        mode = path.stat().st_mode
        assert mode & stat.S_IROTH, path  # the container's root has no CAP_DAC_OVERRIDE
        if path.is_dir():
            assert mode & stat.S_IXOTH, path


def test_package_copies_every_requirements_file(tmp_path: Path) -> None:
    package = build_package(REQUIREMENT, tmp_path / "pkg")
    assert {p.name for p in package.iterdir()} == {
        PACKAGE_MARKER,
        "function.py",
        "requirements.txt",
        "requirements.txt.3.11",
    }


def test_rebuild_replaces_an_own_package_but_not_a_foreign_directory(tmp_path: Path) -> None:
    package = build_package(REQUIREMENT, tmp_path / "pkg")
    (package / "stale.py").write_text("")
    build_package(REQUIREMENT, package)
    assert not (package / "stale.py").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(SpecError, match="not made by faaslab"):
        build_package(REQUIREMENT, foreign)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_init_sh_gets_package_dir_verbose_flag_and_architecture(tmp_path: Path) -> None:
    benchmark = copy_benchmark(REQUIREMENT, tmp_path)
    (benchmark / "python" / "init.sh").write_text('echo "$2 $3" > "$1/args.txt"\n')
    (benchmark / "init.sh").write_text('echo top > "$1/top.txt"\n')  # SeBS runs this one too
    package = build_package(benchmark, tmp_path / "pkg", architecture="arm64")
    assert (package / "args.txt").read_text() == "false arm64\n"
    assert (package / "top.txt").read_text() == "top\n"


def test_failing_init_sh_reports_its_output(tmp_path: Path) -> None:
    benchmark = copy_benchmark(REQUIREMENT, tmp_path)
    (benchmark / "python" / "init.sh").write_text("echo cannot find templates >&2\nexit 3\n")
    with pytest.raises(SpecError, match=r"(?s)exit 3.*cannot find templates"):
        build_package(benchmark, tmp_path / "pkg")


# -- inputs -------------------------------------------------------------------


@pytest.mark.anyio
async def test_generate_inputs_uploads_under_input_prefixes() -> None:
    benchmark = load_benchmark(ROUNDTRIP, data_dir=ROUNDTRIP_DATA)
    storage = MemoryStorage()
    config = await generate_inputs(benchmark, storage)
    bucket = "faaslab-benchmarks-test"
    assert config == {
        "object": {"key": "hello.txt"},
        "bucket": {
            "bucket": bucket,
            "input": "900.storage-roundtrip-0-input",
            "output": "900.storage-roundtrip-0-output",
        },
    }
    assert storage.objects == {
        (bucket, "900.storage-roundtrip-0-input/hello.txt"): (
            ROUNDTRIP_DATA / "hello.txt"
        ).read_bytes(),
        (bucket, "900.storage-roundtrip-0-input/other.txt"): (
            ROUNDTRIP_DATA / "other.txt"
        ).read_bytes(),
    }
    assert storage.recorded == (
        bucket,
        ["900.storage-roundtrip-0-input"],
        ["900.storage-roundtrip-0-output"],
    )


@pytest.mark.anyio
async def test_generate_inputs_without_storage() -> None:
    assert await generate_inputs(load_benchmark(REQUIREMENT), None) == {"n": 1}
    assert await generate_inputs(load_benchmark(REQUIREMENT), None, size="large") == {"n": 100}
    roundtrip = load_benchmark(ROUNDTRIP, data_dir=ROUNDTRIP_DATA)
    with pytest.raises(SpecError, match="needs object storage"):
        await generate_inputs(roundtrip, None)


@pytest.mark.anyio
async def test_unknown_size_names_the_size() -> None:
    with pytest.raises(SpecError, match=r"size 'huge'.*KeyError"):
        await generate_inputs(load_benchmark(REQUIREMENT, size="huge"), MemoryStorage())


@pytest.mark.anyio
async def test_nosql_func_and_bad_bucket_index_are_clear_errors(tmp_path: Path) -> None:
    benchmark = copy_benchmark(REQUIREMENT, tmp_path / "a")
    append(
        benchmark / "input.py",
        "\n\ndef generate_input(d, s, b, i, o, upload_func, nosql_func):\n"
        "    nosql_func('t', 'x', {}, ('k', 1), ('s', 2))\n",
    )
    with pytest.raises(SpecError, match="has no NoSQL storage"):
        await generate_inputs(load_benchmark(benchmark), MemoryStorage())

    benchmark = copy_benchmark(REQUIREMENT, tmp_path / "b")
    append(
        benchmark / "input.py",
        "\n\ndef generate_input(d, s, b, i, o, upload_func, nosql_func):\n"
        "    upload_func(0, 'x', __file__)\n",
    )
    with pytest.raises(SpecError, match=r"input bucket 0, but buckets_count\(\) asked for 0"):
        await generate_inputs(load_benchmark(benchmark), MemoryStorage())


# -- validation ---------------------------------------------------------------


async def verdict_of(benchmark: SebsBenchmark, output: object) -> Verdict:
    return await validate(benchmark, {"n": 1}, output, MemoryStorage())


@pytest.mark.anyio
async def test_validator_verdicts(tmp_path: Path) -> None:
    benchmark = load_benchmark(REQUIREMENT)
    assert await verdict_of(benchmark, {"result": {"doubled": 2}}) == Verdict("valid")
    invalid = await verdict_of(benchmark, {"result": {"doubled": 3}})
    assert invalid == Verdict("invalid", "expected 2, got 3")
    assert not invalid.ok

    crashing = await verdict_of(benchmark, None)  # the validator calls None.get
    assert crashing.status == "error"
    assert "AttributeError" in (crashing.reason or "")


@pytest.mark.anyio
async def test_validator_importing_what_only_sebs_has_is_unavailable(tmp_path: Path) -> None:
    benchmark = copy_benchmark(REQUIREMENT, tmp_path)
    append(
        benchmark / "input.py",
        "\n\ndef validate_output(data_dir, input_config, output, language, storage=None):\n"
        "    from sebs.faas.function import ExecutionResult\n",
    )
    verdict = await verdict_of(load_benchmark(benchmark), {"result": {"doubled": 2}})
    assert verdict.status == "unavailable"
    assert "validator unavailable" in (verdict.reason or "")
    assert "sebs" in (verdict.reason or "")


@pytest.mark.anyio
async def test_no_validator_is_unavailable(tmp_path: Path) -> None:
    benchmark = copy_benchmark(REQUIREMENT, tmp_path)
    text = (benchmark / "input.py").read_text()
    (benchmark / "input.py").write_text(text.split("def validate_output")[0])
    verdict = await verdict_of(load_benchmark(benchmark), {})
    assert verdict == Verdict("unavailable", "910.requirement's input.py has no validate_output")


@pytest.mark.anyio
async def test_validator_reads_storage_through_blocking_calls() -> None:
    benchmark = load_benchmark(ROUNDTRIP, data_dir=ROUNDTRIP_DATA)
    storage = MemoryStorage()
    config = await generate_inputs(benchmark, storage)
    expected = (ROUNDTRIP_DATA / "hello.txt").read_bytes().upper()
    bucket, out = config["bucket"]["bucket"], config["bucket"]["output"]
    storage.objects[bucket, f"{out}/hello.1a2b3c4d.txt"] = expected
    output = {
        "result": {
            "key": f"{out}/hello.1a2b3c4d.txt",
            "sha256": hashlib.sha256(expected).hexdigest(),
        }
    }
    assert await validate(benchmark, config, output, storage) == Verdict("valid")
    storage.objects[bucket, f"{out}/hello.1a2b3c4d.txt"] = b"tampered"
    verdict = await validate(benchmark, config, output, storage)
    assert verdict == Verdict("invalid", "the stored output is not the upper-cased input")
