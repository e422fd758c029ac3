"""SeBS benchmark directories: packaging, ``input.py``, ``validate_output``.

A SeBS benchmark directory (spcl/serverless-benchmarks, ``benchmarks/<group>/
<name>/``) holds ``config.json`` (``timeout`` s, ``memory`` MB, ``languages``,
maybe ``modules``), ``input.py`` and one directory per language: ``python/``
(``function.py``, maybe ``requirements.txt``, ``requirements.txt.3.11``),
``nodejs/`` (``function.js``, ``package.json``, maybe ``package.json.18``),
each maybe with ``init.sh`` and static files. What SeBS does with it, and so
what faaslab does:

- the package is what SeBS's ``copy_code`` takes of ``<language>/`` (Python:
  ``*.py``, ``requirements.txt*``; Node.js: ``*.js``, ``package.json``, and
  ``package.json.<version>`` copied over ``package.json`` when the runtime's
  version has one), then ``bash init.sh <package dir> false <arch>`` of the
  benchmark directory and of ``<language>/``, when they exist (they copy
  static files such as templates); the storage (and NoSQL) helpers come with
  the runtime unless the benchmark ships its own;
- ``input.py`` is loaded on the host; ``buckets_count() -> (n_in, n_out)``
  asks for input/output prefixes ``<benchmark>-<i>-input`` /
  ``<benchmark>-<i>-output`` in one benchmarks bucket, and
  ``generate_input(data_dir, size, benchmarks_bucket, input_paths,
  output_paths, upload_func, nosql_func)`` returns the event, uploading
  files with ``upload_func(bucket_idx, key, filepath)`` to
  ``input_paths[bucket_idx] + "/" + key``;
- ``validate_output(data_dir, input_config, output, language, storage)``
  (older benchmarks take fewer of these, by name) returns None when the output
  is right and a reason when not; ``output`` is the handler's return value,
  ``language`` the one the benchmark ran in.

NoSQL (``allocate_nosql`` in ``input.py``, ``"nosql"`` in ``modules``): the
tables are read here (``_nosql``), created by the deployment's NoSQL store,
and ``nosql_func`` writes to them through it (``write_to_table``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol

import anyio
import anyio.from_thread
import msgspec
import structlog

from .._errors import FaaslabError, SpecError
from .._runtime import LANGUAGES, LanguageRuntime, language_runtime
from .._util import parse_file
from ._nosql import TableKeys, read_allocate_nosql

__all__ = (
    "BenchmarkNoSQL",
    "BenchmarkStorage",
    "SebsBenchmark",
    "Verdict",
    "build_package",
    "generate_inputs",
    "is_sebs_benchmark",
    "load_benchmark",
    "validate",
)

log = structlog.get_logger()

#: Marks a directory ``build_package`` made, so that a rebuild may replace it.
PACKAGE_MARKER = ".faaslab-package"
INIT_TIMEOUT_S = 300.0


class BenchmarkStorage(Protocol):
    """What input generation and validation need of the storage (a :class:`Storage`)."""

    def benchmarks_bucket_name(self) -> str: ...

    def record_benchmark_buckets(
        self, bucket: str, inputs: list[str], outputs: list[str]
    ) -> None: ...

    async def create_bucket(self, bucket: str) -> None: ...

    async def bucket_exists(self, bucket: str) -> bool: ...

    async def upload_file(self, bucket: str, key: str, path: Path | str) -> None: ...

    async def download_file(self, bucket: str, key: str, path: Path | str) -> None: ...

    async def list_objects(self, bucket: str, prefix: str = "") -> list[str]: ...


class BenchmarkNoSQL(Protocol):
    """What input generation needs of the NoSQL store (a :class:`~faaslab._storage.NoSQL`)."""

    async def write_to_table(
        self,
        benchmark: str,
        table: str,
        data: dict[str, Any],
        primary_key: tuple[str, Any],
        secondary_key: tuple[str, Any] | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class SebsBenchmark:
    """A loaded SeBS benchmark directory."""

    #: The directory's name, e.g. ``110.dynamic-html``: the function's name.
    name: str
    path: Path
    memory_mb: int
    timeout_s: float
    #: The manifest used: ``python/requirements.txt.3.11`` when present, else
    #: ``python/requirements.txt``; ``nodejs/package.json.18`` when present, else
    #: ``nodejs/package.json``.
    requirements: Path | None
    size: str
    data_dir: Path | None
    #: ``buckets_count()``, or None when ``input.py`` has none.
    buckets: tuple[int, int] | None
    #: ``input.py``, loaded (None when the benchmark has none).
    module: ModuleType | None = field(default=None, repr=False, compare=False)
    #: ``config.json``'s ``modules`` (``storage``, ``nosql``).
    modules: frozenset[str] = frozenset()
    #: ``allocate_nosql()``: table -> (primary key, secondary key or None).
    nosql_tables: dict[str, TableKeys] = field(default_factory=dict)

    @property
    def needs_nosql(self) -> bool:
        return "nosql" in self.modules or bool(self.nosql_tables)
    #: The language it runs in (its ``<language>/`` directory) and the version.
    language: str = "python"
    language_version: str = "3.11"

    #: The manifest's name in the built package (a package.json variant becomes package.json).
    package_manifest: str | None = None

    @property
    def can_generate_input(self) -> bool:
        return callable(getattr(self.module, "generate_input", None))

    @property
    def can_validate(self) -> bool:
        return callable(getattr(self.module, "validate_output", None))


class Verdict(msgspec.Struct, frozen=True):
    """What ``validate_output`` said of an invocation's output.

    ``status``: ``valid``; ``invalid`` (``reason`` from the validator);
    ``unavailable`` (no validator, or it imports what only SeBS has);
    ``error`` (the validator itself raised).
    """

    status: Literal["valid", "invalid", "unavailable", "error"]
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "valid"


# -- the directory ------------------------------------------------------------


#: Languages whose per-version manifest SeBS copies over the plain one
#: (``copy_code``: ``package.json.<version>`` → ``package.json``); Python's
#: installer picks ``requirements.txt.<version>`` itself.
_VARIANT_REPLACES_MANIFEST = frozenset({"nodejs"})


def _entry(directory: Path, runtime: LanguageRuntime) -> Path:
    return directory / runtime.name / runtime.entry_file


def is_sebs_benchmark(path: Path | str, language: str | None = None) -> bool:
    """Whether ``path`` looks like a SeBS benchmark (with an implementation in ``language``)."""
    directory = Path(path)
    if not (directory / "config.json").is_file():
        return False
    runtimes = LANGUAGES.values() if language is None else [language_runtime(language)]
    return any(_entry(directory, runtime).is_file() for runtime in runtimes)


def _read_config(directory: Path, language: str) -> tuple[int, float, set[str]]:
    """``memory`` (MB), ``timeout`` (s) and ``modules`` of ``config.json``."""
    where = directory / "config.json"
    try:
        config = json.loads(where.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"{where}: cannot read it as JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise SpecError(f"{where}: must be a JSON object")
    memory, timeout = config.get("memory"), config.get("timeout")
    if not isinstance(memory, int) or isinstance(memory, bool) or memory < 6:
        raise SpecError(f"{where}: memory: {memory!r}; an integer number of MB >= 6 is needed")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise SpecError(f"{where}: timeout: {timeout!r}; a number of seconds > 0 is needed")
    languages = {
        item if isinstance(item, str) else str(item.get("name") or item.get("language"))
        for item in config.get("languages") or []
        if isinstance(item, str | dict)
    }
    if languages and language not in languages:
        raise SpecError(
            f"{where}: languages: {sorted(languages)}; the benchmark is not available in "
            f"{language}"
        )
    modules = {str(m) for m in config.get("modules") or []}
    return memory, float(timeout), modules


def _load_input_module(path: Path, benchmark: str) -> ModuleType:
    """Load ``input.py`` by path, in this process, under a name of its own."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"_faaslab_sebs_input_{digest}", path)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path}: cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise SpecError(
            f"{benchmark}: input.py imports what this Python lacks ({exc}); install it in "
            "faaslab's environment to generate this benchmark's input"
        ) from exc
    except Exception as exc:
        raise SpecError(
            f"{benchmark}: input.py fails to load: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _reads_data_dir(path: Path) -> bool:
    """Whether ``generate_input`` uses its first parameter (the data directory)."""
    try:
        tree = parse_file(path)
    except SyntaxError:
        return False  # the loader reports it
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "generate_input" and node.args.args:
            parameter = node.args.args[0].arg
            return any(
                isinstance(n, ast.Name) and n.id == parameter and isinstance(n.ctx, ast.Load)
                for n in ast.walk(node)
            )
    return False


def load_benchmark(
    directory: Path | str,
    *,
    size: str = "test",
    data_dir: Path | str | None = None,
    language: str = "python",
    language_version: str | None = None,
) -> SebsBenchmark:
    """Read a SeBS benchmark directory and load its ``input.py``.

    Everything that would fail later fails here, before anything starts: not a
    benchmark (in ``language``), bad NoSQL tables, ``data_dir`` needed but not
    given (or missing).
    """
    path = Path(directory).resolve()
    runtime = language_runtime(language)
    if not is_sebs_benchmark(path, language):
        raise SpecError(
            f"{directory}: not a SeBS benchmark directory in {language} (config.json and "
            f"{runtime.name}/{runtime.entry_file} are needed)"
        )
    if not size:
        raise SpecError("size: empty; SeBS sizes are test, small and large")
    name = path.name
    memory, timeout, modules = _read_config(path, language)
    version = runtime.resolve_version(language_version)
    sources = path / runtime.name
    requirements = next(
        (
            p
            for p in (sources / runtime.manifest_variant(version), sources / runtime.manifest)
            if p.is_file()
        ),
        None,
    )
    package_manifest = None
    if requirements is not None:
        replaces = language in _VARIANT_REPLACES_MANIFEST
        package_manifest = runtime.manifest if replaces else requirements.name
    input_py = path / "input.py"
    module = _load_input_module(input_py, name) if input_py.is_file() else None
    tables = read_allocate_nosql(module, input_py, name)
    buckets = _buckets_count(module, name)
    data = Path(data_dir).resolve() if data_dir is not None else None
    if data is not None and not data.is_dir():
        raise SpecError(f"data_dir: {data_dir} is not a directory")
    if data is None and module is not None and _reads_data_dir(input_py):
        raise SpecError(
            f"{name}: its input.py reads the benchmark's data directory: pass --data-dir DIR "
            f"(SeBS's benchmarks-data/{name})"
        )
    return SebsBenchmark(
        name=name,
        path=path,
        memory_mb=memory,
        timeout_s=timeout,
        requirements=requirements,
        size=size,
        data_dir=data,
        buckets=buckets,
        module=module,
        modules=frozenset(modules),
        nosql_tables=tables,
        language=language,
        language_version=version,
        package_manifest=package_manifest,
    )


def _buckets_count(module: ModuleType | None, name: str) -> tuple[int, int] | None:
    count = getattr(module, "buckets_count", None)
    if not callable(count):
        return None
    try:
        n_in, n_out = count()
        return int(n_in), int(n_out)
    except Exception as exc:
        raise SpecError(
            f"{name}: input.py's buckets_count() must return (inputs, outputs): {exc}"
        ) from exc


# -- the package --------------------------------------------------------------


def build_package(
    benchmark_dir: Path | str,
    out_dir: Path | str,
    *,
    architecture: str = "x64",
    language: str = "python",
    language_version: str | None = None,
) -> Path:
    """Build the function package as SeBS does; return its directory (``out_dir``).

    ``out_dir`` must be missing, empty, or a package built before (it is replaced).
    Runs ``init.sh`` scripts: call it from a worker thread in async code.
    """
    source = Path(benchmark_dir).resolve()
    runtime = language_runtime(language)
    sources = source / runtime.name
    if not _entry(source, runtime).is_file():
        raise SpecError(f"{benchmark_dir}: no {runtime.name}/{runtime.entry_file}")
    out = Path(out_dir).resolve()
    if out.exists():
        if (out / PACKAGE_MARKER).is_file():
            shutil.rmtree(out)
        elif not out.is_dir() or any(out.iterdir()):
            raise SpecError(
                f"package directory {out_dir} exists and was not made by faaslab: "
                "give a new or empty directory"
            )
    out.mkdir(parents=True, exist_ok=True)
    for pattern in runtime.sebs_globs:
        for file in sorted(sources.glob(pattern)):
            if file.is_file():
                shutil.copy2(file, out / file.name)
    variant = sources / runtime.manifest_variant(language_version)
    if language in _VARIANT_REPLACES_MANIFEST and variant.is_file():
        shutil.copy2(variant, out / runtime.manifest)
    if language in _VARIANT_REPLACES_MANIFEST and (out / runtime.manifest).is_file():
        _strip_header_comments(out / runtime.manifest)
    for directory in (source, sources):
        script = directory / "init.sh"
        if script.is_file():
            _run_init(script, out, architecture)
    _make_world_readable(out)
    (out / PACKAGE_MARKER).write_text(f"{source}\n")
    log.debug("sebs.package_built", benchmark=source.name, package=str(out))
    return out


def _run_init(script: Path, package: Path, architecture: str) -> None:
    try:
        result = subprocess.run(
            ["bash", str(script), str(package), "false", architecture],
            cwd=script.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=INIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SpecError(f"{script}: did not finish within {INIT_TIMEOUT_S:g} s") from exc
    if result.returncode != 0:
        tail = result.stdout.decode(errors="replace")[-2000:]
        raise SpecError(f"{script} failed (exit {result.returncode}):\n{tail}")


def _strip_header_comments(manifest: Path) -> None:
    """Drop the ``#`` lines SeBS heads its package.json files with, so npm can read them.

    SeBS's benchmark files carry a copyright line (``# Copyright 2020-2025 ETH
    Zurich and the SeBS authors...``), package.json and its variants too,
    which makes them invalid JSON. Only leading ``#`` lines go, and only when
    the file is not JSON as it is; anything else wrong stays for the
    installer's one-line error.
    """
    text = manifest.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)
        return
    except ValueError:
        pass
    lines = text.splitlines(keepends=True)
    header = 0
    while header < len(lines) and lines[header].lstrip().startswith("#"):
        header += 1
    if header:
        manifest.write_text("".join(lines[header:]), encoding="utf-8")


def _make_world_readable(root: Path) -> None:
    """Function containers run as root without CAP_DAC_OVERRIDE: modes must allow reading."""
    root.chmod(0o755)
    for directory, subdirs, files in os.walk(root):
        for name in subdirs:
            (Path(directory) / name).chmod(0o755)
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)


# -- inputs -------------------------------------------------------------------


async def generate_inputs(
    benchmark: SebsBenchmark,
    storage: BenchmarkStorage | None,
    *,
    nosql: BenchmarkNoSQL | None = None,
    size: str | None = None,
    data_dir: Path | None = None,
    on_upload: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``input.py``'s ``generate_input`` on the host; return the event it makes.

    Creates the benchmarks bucket and the prefixes ``buckets_count()`` asks for;
    ``upload_func`` uploads through ``storage``, ``nosql_func`` writes to the
    tables of ``allocate_nosql()`` through ``nosql``. ``size`` and
    ``data_dir`` default to the benchmark's. ``on_upload(files, bytes)`` is
    told the totals so far after each file is uploaded (from input.py's thread).
    """
    name = benchmark.name
    module = benchmark.module
    if module is None or not benchmark.can_generate_input:
        return {}
    size = size or benchmark.size
    data = data_dir if data_dir is not None else benchmark.data_dir
    n_in, n_out = benchmark.buckets or (0, 0)
    inputs = [f"{name}-{i}-input" for i in range(n_in)]
    outputs = [f"{name}-{i}-output" for i in range(n_out)]
    if storage is None:
        if inputs or outputs:
            raise SpecError(f"{name}: needs object storage (buckets_count {n_in, n_out}): not none")
        bucket = ""
    else:
        bucket = storage.benchmarks_bucket_name()
        await storage.create_bucket(bucket)
        storage.record_benchmark_buckets(bucket, inputs, outputs)

    uploaded = [0, 0]  # files, bytes

    def upload_func(bucket_idx: int, key: str, filepath: str) -> None:
        if storage is None or not 0 <= bucket_idx < len(inputs):
            raise SpecError(
                f"{name}: input.py uploads to input bucket {bucket_idx}, but buckets_count() "
                f"asked for {n_in}"
            )
        anyio.from_thread.run(storage.upload_file, bucket, f"{inputs[bucket_idx]}/{key}", filepath)
        uploaded[0] += 1
        uploaded[1] += os.path.getsize(filepath)
        if on_upload is not None:
            on_upload(uploaded[0], uploaded[1])

    def nosql_func(
        benchmark: str,
        table: str,
        data: dict[str, Any],
        primary_key: tuple[str, Any],
        secondary_key: tuple[str, Any] | None = None,
    ) -> None:
        if nosql is None:
            raise SpecError(
                f"{name}: input.py writes to the NoSQL table {table!r}, but the deployment "
                "has no NoSQL storage"
            )
        # The name input.py passes is SeBS's directory name; the tables are
        # this benchmark's whatever its directory is called here.
        anyio.from_thread.run(
            nosql.write_to_table,
            name,
            table,
            dict(data),
            tuple(primary_key),
            tuple(secondary_key) if secondary_key is not None else None,
        )

    def run() -> Any:
        data_arg = str(data) if data is not None else None
        return module.generate_input(
            data_arg, size, bucket, inputs, outputs, upload_func, nosql_func
        )

    try:
        config = await anyio.to_thread.run_sync(run)
    except FaaslabError:
        raise
    except (OSError, TypeError) as exc:
        hint = " (pass --data-dir DIR: SeBS's benchmarks-data directory)" if data is None else ""
        raise SpecError(
            f"{name}: input.py's generate_input failed: {type(exc).__name__}: {exc}{hint}"
        ) from exc
    except Exception as exc:
        raise SpecError(
            f"{name}: input.py's generate_input (size {size!r}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(config, dict):
        raise SpecError(f"{name}: generate_input returned {type(config).__name__}, not a dict")
    try:
        msgspec.json.encode(config)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{name}: generate_input returned something not JSON: {exc}") from exc
    log.info("sebs.input_generated", benchmark=name, size=size, bucket=bucket, inputs=inputs)
    return config


# -- validation ---------------------------------------------------------------


class _BlockingStorage:
    """SeBS's storage methods, blocking, for validators running in a worker thread."""

    def __init__(self, storage: BenchmarkStorage) -> None:
        self._storage = storage

    def download(self, bucket_name: str, key: str, filepath: str) -> None:
        anyio.from_thread.run(self._storage.download_file, bucket_name, key, filepath)

    def upload(self, bucket_name: str, filepath: str, key: str) -> None:
        anyio.from_thread.run(self._storage.upload_file, bucket_name, key, filepath)

    def list_bucket(self, bucket_name: str, prefix: str = "") -> list[str]:
        return anyio.from_thread.run(self._storage.list_objects, bucket_name, prefix)

    def exists_bucket(self, bucket_name: str) -> bool:
        return anyio.from_thread.run(self._storage.bucket_exists, bucket_name)


def _validator_arguments(function: Any, **available: Any) -> list[Any]:
    """What to pass ``validate_output``, by the names of its parameters.

    SeBS's validators differ by benchmark and release: ``(data_dir,
    input_config, output, language, storage)``, ``(input_config, output,
    language, storage)``, ``(input_config, output)``. Parameters named so get
    their value; anything else gets all five, in that order.
    """
    everything = list(available.values())
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return everything
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in parameters if p.kind in positional]
    if names and all(name in available for name in names):
        return [available[name] for name in names]
    return everything


async def validate(
    benchmark: SebsBenchmark,
    input_config: dict[str, Any],
    output: Any,
    storage: BenchmarkStorage | None,
) -> Verdict:
    """Ask ``input.py``'s ``validate_output`` about ``output`` (the handler's return).

    Never raises for the validator's sake: a validator that cannot run says so
    in the verdict, and the invocation stands.
    """
    function = getattr(benchmark.module, "validate_output", None)
    if not callable(function):
        return Verdict("unavailable", f"{benchmark.name}'s input.py has no validate_output")
    data = str(benchmark.data_dir) if benchmark.data_dir is not None else None
    blocking = _BlockingStorage(storage) if storage is not None else None

    arguments = _validator_arguments(
        function,
        data_dir=data,
        input_config=input_config,
        output=output,
        language=benchmark.language,
        storage=blocking,
    )

    def run() -> Any:
        return function(*arguments)

    try:
        result = await anyio.to_thread.run_sync(run)
    except ImportError as exc:
        return Verdict("unavailable", f"validator unavailable: {exc}")
    except Exception as exc:
        log.warning("sebs.validator_failed", benchmark=benchmark.name, error=repr(exc))
        return Verdict("error", f"the validator raised {type(exc).__name__}: {exc}")
    if result is None or result is True:
        return Verdict("valid")
    if result is False:
        return Verdict("invalid", "the validator returned False")
    return Verdict("invalid", str(result))
