"""SeBS's configuration file (``--config CFG``), read into typed, frozen Structs.

The file is SeBS's own (``configs/example.json``, ``configs/python.json``)::

    {"experiments": {"runtime": {"language": "python", "version": "3.11"},
                     "update_code": false, "update_storage": false,
                     "download_results": false, "architecture": "x64",
                     "container_deployment": false, "flags": {},
                     "perf-cost": {"benchmark": "110.dynamic-html",
                                   "experiments": ["cold", "warm", "burst", "sequential"],
                                   "input-size": "test", "repetitions": 50,
                                   "concurrent-invocations": 50,
                                   "memory-sizes": [128, 256]},
                     "network-ping-pong": {..}, "invocation-overhead": {..},
                     "eviction-model": {..}},
     "deployment": {"name": "local",
                    "local": {"storage": <the JSON of `sebs storage start`>}}}

Merging and defaults (SeBS's rules where it has them):

- ``--language`` / ``--language-version`` / ``--architecture`` /
  ``--deployment`` replace ``experiments.runtime.language``,
  ``experiments.runtime.version``, ``experiments.architecture`` and
  ``deployment.name``, key by key, as SeBS's ``update_nested_dict`` does
  (so ``--language nodejs`` alone keeps the config's version, and is refused
  when that is a Python version).
- Without a runtime anywhere: ``python``; without a version: 3.11 for Python,
  18 for Node.js (faaslab's runtimes). Architecture: ``x64``.
- ``update_code``, ``update_storage``, ``download_results``,
  ``container_deployment``: false; ``flags``: none. SeBS requires most of
  them; faaslab does not need them, so a config may leave them out.
- No ``deployment`` section, or no ``deployment.name``: ``local``.
- ``deployment.local.storage``: the new shape ``{"object": {"type": "minio",
  "minio": {..}}, "nosql": {"type": "scylladb", "scylladb": {..}}}`` or the
  old flat MinIO one (``{"address": .., "type": "minio", ..}``). A store
  whose ``address`` is empty is no store: SeBS's example configs ship that
  empty template.
- An experiment's own section is read only when that experiment runs
  (:meth:`SebsConfig.perf_cost`), as SeBS does.

Every problem is one :class:`SpecError` line naming the file and the key.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import msgspec

from .._errors import SpecError
from ._perf_cost import RunType
from ._results import ResultConfig

__all__ = (
    "DEFAULT_VERSIONS",
    "EXPERIMENTS",
    "INPUT_SIZES",
    "UNSUPPORTED_EXPERIMENTS",
    "ExperimentsConfig",
    "LocalStorage",
    "MinioStorage",
    "PerfCostSettings",
    "Runtime",
    "ScyllaDBStorage",
    "SebsConfig",
    "check_deployment",
    "check_experiment",
    "load_config",
    "load_storage",
    "parse_config",
    "result_config",
)

Language = Literal["python", "nodejs"]
Architecture = Literal["x64", "arm64"]

LANGUAGES: tuple[Language, ...] = ("python", "nodejs")
ARCHITECTURES: tuple[Architecture, ...] = ("x64", "arm64")
DEFAULT_VERSIONS: dict[Language, str] = {"python": "3.11", "nodejs": "18"}
#: SeBS's benchmark input sizes.
INPUT_SIZES = ("test", "small", "large")
#: SeBS's experiments (``sebs/sebs.py``), in its order.
EXPERIMENTS = ("perf-cost", "network-ping-pong", "invocation-overhead", "eviction-model")
#: Why each of SeBS's other experiments cannot run on a local deployment.
UNSUPPORTED_EXPERIMENTS = {
    "network-ping-pong": (
        "it measures the network between the client and a cloud function: SeBS asks "
        "checkip.amazonaws.com for the client's public IP and has the function send UDP "
        "datagrams to it, and a local deployment has neither that path nor a public IP"
    ),
    "invocation-overhead": (
        "it estimates clock drift between the client and a cloud function over UDP to the "
        "client's public IP (from checkip.amazonaws.com); on one machine both share one "
        "clock, and a local deployment has no public IP"
    ),
    "eviction-model": (
        "it measures how long a cloud provider keeps idle instances before evicting them "
        "(SeBS runs it on AWS only); a local deployment keeps containers until it is told "
        "to stop them, so there is no eviction to measure"
    ),
}
#: SeBS's other platforms (``--deployment``).
_CLOUD_PLATFORMS = ("aws", "azure", "gcp", "openwhisk", "cloudflare")
_PYTHON_VERSION = re.compile(r"3\.[0-9]+")
_NODE_VERSION = re.compile(r"[0-9]+")


class Runtime(msgspec.Struct, frozen=True):
    language: Language
    version: str


class PerfCostSettings(msgspec.Struct, frozen=True, kw_only=True):
    """``experiments.perf-cost``."""

    benchmark: str
    experiments: tuple[RunType, ...]
    input_size: str
    repetitions: int
    concurrent_invocations: int
    #: Empty: run once at the benchmark's own memory (files without ``_<memory>``).
    memory_sizes: tuple[int, ...]


class ExperimentsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``experiments``, overrides applied."""

    runtime: Runtime
    architecture: Architecture = "x64"
    update_code: bool = False
    update_storage: bool = False
    download_results: bool = False
    container_deployment: bool = False
    flags: dict[str, bool] = msgspec.field(default_factory=dict)
    #: The sections of SeBS's experiments present in the file, as written.
    sections: dict[str, Any] = msgspec.field(default_factory=dict)


class MinioStorage(msgspec.Struct, frozen=True, kw_only=True):
    """A MinIO store as ``sebs storage start`` describes it (SeBS's ``MinioConfig``)."""

    #: What functions get as ``MINIO_ADDRESS``: the container's ``ip:9000``.
    address: str = ""
    #: The port published on the host, or -1.
    mapped_port: int = -1
    access_key: str = ""
    secret_key: str = ""
    #: The store's container id.
    instance_id: str = ""
    output_buckets: list[str] = msgspec.field(default_factory=list)
    input_buckets: list[str] = msgspec.field(default_factory=list)
    version: str = ""
    data_volume: str = ""
    type: str = "minio"

    @property
    def host_endpoint(self) -> str:
        """Where the host reaches the store: its published port on 127.0.0.1, else ``address``."""
        return f"127.0.0.1:{self.mapped_port}" if self.mapped_port > 0 else self.address


class ScyllaDBStorage(msgspec.Struct, frozen=True, kw_only=True):
    """A ScyllaDB (DynamoDB API) store as SeBS describes it (``ScyllaDBConfig``)."""

    address: str = ""
    mapped_port: int = -1
    alternator_port: int = 8000
    access_key: str = "None"
    secret_key: str = "None"
    instance_id: str = ""
    region: str = "None"
    cpus: int = -1
    #: MB; SeBS's own storage config writes it as a string ("750").
    memory: int | str = -1
    version: str = ""
    data_volume: str = ""

    @property
    def host_endpoint(self) -> str:
        return f"127.0.0.1:{self.mapped_port}" if self.mapped_port > 0 else self.address


class LocalStorage(msgspec.Struct, frozen=True, kw_only=True):
    """``deployment.local.storage``: the stores a deployment is to use."""

    object: MinioStorage | None = None
    nosql: ScyllaDBStorage | None = None


class SebsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A SeBS config file, read and merged with the command line's overrides."""

    #: Where it came from, for messages.
    source: str
    experiments: ExperimentsConfig
    #: Always ``local`` (anything else is refused).
    deployment: str = "local"
    #: ``deployment.local.storage``; None when the file names no store.
    storage: LocalStorage | None = None

    def perf_cost(self) -> PerfCostSettings:
        """``experiments.perf-cost``, checked now (an experiment's section is read when it runs)."""
        section = self.experiments.sections.get("perf-cost")
        if section is None:
            raise SpecError(
                f"{self.source}: experiments.perf-cost: missing; perf-cost needs its settings "
                "there (benchmark, experiments, input-size, repetitions, "
                "concurrent-invocations, memory-sizes)"
            )
        return _perf_cost(section, f"{self.source}: experiments.perf-cost")


# -- the command line's names -------------------------------------------------


def check_experiment(name: str) -> str:
    """``experiment invoke|process NAME``: the name when faaslab runs it, else a SpecError."""
    if name in UNSUPPORTED_EXPERIMENTS:
        raise SpecError(
            f"experiment {name}: not supported locally: {UNSUPPORTED_EXPERIMENTS[name]}"
        )
    if name not in EXPERIMENTS:
        close = difflib.get_close_matches(name, EXPERIMENTS, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise SpecError(
            f"experiment {name!r}: unknown; SeBS's experiments are {', '.join(EXPERIMENTS)}{hint}"
        )
    return name


def check_deployment(name: str, *, where: str = "--deployment") -> None:
    """Refuse every platform but SeBS's ``local``."""
    if name == "local":
        return
    if name in _CLOUD_PLATFORMS:
        raise SpecError(
            f"{where} {name}: faaslab runs SeBS's local platform only; use SeBS itself for "
            f"{name}, or --deployment local"
        )
    raise SpecError(f"{where} {name!r}: unknown platform; faaslab runs SeBS's local platform only")


# -- reading ------------------------------------------------------------------


def _read_json(path: Path | str) -> object:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not JSON: not UTF-8 text ({exc.reason})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{path}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc


def load_storage(path: Path | str) -> LocalStorage | None:
    """A storage description file (``sebs storage start --output-json``'s)."""
    return _storage(_read_json(path), str(path))


def load_config(
    path: Path | str,
    *,
    language: str | None = None,
    language_version: str | None = None,
    architecture: str | None = None,
    deployment: str | None = None,
    storage_configuration: Path | str | Sequence[Path | str] | None = None,
) -> SebsConfig:
    """Read ``--config CFG`` and merge the command line's overrides into it.

    ``storage_configuration`` (``--storage-configuration JSON``, which SeBS
    takes several times) replaces ``deployment.local.storage``, as in SeBS;
    with several files, each store kind (``object``, ``nosql``) comes from
    the last file that describes one.
    """
    storage: LocalStorage | msgspec.UnsetType | None = msgspec.UNSET
    if storage_configuration is not None:
        paths = (
            [storage_configuration]
            if isinstance(storage_configuration, Path | str)
            else list(storage_configuration)
        )
        if paths:
            storage = _merge_storage([load_storage(path) for path in paths])
    return parse_config(
        _read_json(path),
        source=str(path),
        language=language,
        language_version=language_version,
        architecture=architecture,
        deployment=deployment,
        storage=storage,
    )


def _merge_storage(found: list[LocalStorage | None]) -> LocalStorage | None:
    stores = [store for store in found if store is not None]
    objects = [store.object for store in stores if store.object is not None]
    nosqls = [store.nosql for store in stores if store.nosql is not None]
    if not objects and not nosqls:
        return None
    return LocalStorage(
        object=objects[-1] if objects else None, nosql=nosqls[-1] if nosqls else None
    )


def parse_config(
    data: object,
    *,
    source: str = "config",
    language: str | None = None,
    language_version: str | None = None,
    architecture: str | None = None,
    deployment: str | None = None,
    storage: LocalStorage | msgspec.UnsetType | None = msgspec.UNSET,
) -> SebsConfig:
    """:func:`load_config` for a config already decoded from JSON.

    ``storage``, when given, stands instead of ``deployment.local.storage``.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{source}: must be a JSON object, not {_json_kind(data)}")
    experiments = data.get("experiments")
    if experiments is None:
        raise SpecError(
            f'{source}: no experiments section; a SeBS config has "experiments" (with '
            '"runtime") and "deployment"'
        )
    where = f"{source}: experiments"
    experiments = _object(experiments, where)
    deployment_section = _object(data.get("deployment", {}), f"{source}: deployment")
    name = _deployment_name(deployment_section, deployment, source)
    if isinstance(storage, msgspec.UnsetType):
        local = _object(deployment_section.get("local", {}), f"{source}: deployment.local")
        section = local.get("storage")
        storage = (
            _storage(section, source, "deployment.local.storage") if section is not None else None
        )
    return SebsConfig(
        source=source,
        experiments=_experiments(experiments, where, language, language_version, architecture),
        deployment=name,
        storage=storage,
    )


def _deployment_name(section: dict[str, Any], override: str | None, source: str) -> str:
    if override is not None:
        check_deployment(override)
        return override
    name = section.get("name", "local")
    if not isinstance(name, str):
        raise SpecError(f"{source}: deployment.name: {name!r}; a platform name is needed")
    if name != "local":
        check_deployment(name, where=f"{source}: deployment.name")
    return name


def _experiments(
    section: dict[str, Any],
    where: str,
    language: str | None,
    language_version: str | None,
    architecture: str | None,
) -> ExperimentsConfig:
    runtime = _object(section.get("runtime", {}), f"{where}.runtime")
    named = language if language is not None else runtime.get("language", "python")
    if named not in LANGUAGES:
        origin = "--language" if language is not None else f"{where}.runtime.language"
        raise SpecError(f"{origin}: {named!r}; faaslab runs {' and '.join(LANGUAGES)}")
    chosen_language = cast(Language, named)
    if language_version is not None:
        version, origin = language_version, "--language-version"
    else:
        version = runtime.get("version", DEFAULT_VERSIONS[chosen_language])
        origin = f"{where}.runtime.version"
    _check_version(chosen_language, version, origin)
    chosen_architecture = architecture if architecture is not None else section.get("architecture")
    if chosen_architecture is None:
        chosen_architecture = "x64"
    if chosen_architecture not in ARCHITECTURES:
        origin = "--architecture" if architecture is not None else f"{where}.architecture"
        raise SpecError(f"{origin}: {chosen_architecture!r}; one of {', '.join(ARCHITECTURES)}")
    switches = {
        key: _boolean(section.get(key, False), f"{where}.{key}")
        for key in ("update_code", "update_storage", "download_results", "container_deployment")
    }
    if switches["container_deployment"]:
        # As SeBS: "Container deployment is not supported in local."
        raise SpecError(
            f"{where}.container_deployment: true; SeBS's local platform deploys code packages "
            "only: set it to false"
        )
    flags = _object(section.get("flags", {}), f"{where}.flags")
    return ExperimentsConfig(
        runtime=Runtime(chosen_language, version),
        architecture=cast(Architecture, chosen_architecture),
        flags={key: _boolean(value, f"{where}.flags.{key}") for key, value in flags.items()},
        sections={name: section[name] for name in EXPERIMENTS if name in section},
        **switches,
    )


def _check_version(language: Language, version: object, origin: str) -> None:
    pattern, example = (_PYTHON_VERSION, "3.11") if language == "python" else (_NODE_VERSION, "18")
    if not isinstance(version, str) or pattern.fullmatch(version) is None:
        raise SpecError(
            f"{origin}: {version!r} is not a {language} version (such as {example!r}); "
            "pass --language-version"
        )


def _perf_cost(value: object, where: str) -> PerfCostSettings:
    section = _object(value, where)
    keys = ("benchmark", "experiments", "input-size", "repetitions", "concurrent-invocations")
    for key in (*keys, "memory-sizes"):
        if key not in section:
            raise SpecError(f"{where}.{key}: missing")
    benchmark = section["benchmark"]
    if not isinstance(benchmark, str) or not benchmark:
        raise SpecError(f"{where}.benchmark: {benchmark!r}; a benchmark name is needed")
    types = section["experiments"]
    if not isinstance(types, list) or not types:
        raise SpecError(
            f"{where}.experiments: {types!r}; a non-empty list of {', '.join(RunType)} is needed"
        )
    for item in types:
        if item not in tuple(RunType):
            raise SpecError(
                f"{where}.experiments: {item!r} is not a perf-cost experiment type; "
                f"SeBS's are {', '.join(RunType)}"
            )
    if len(set(types)) != len(types):
        raise SpecError(f"{where}.experiments: {types!r} names a type twice")
    size = section["input-size"]
    if size not in INPUT_SIZES:
        raise SpecError(f"{where}.input-size: {size!r}; one of {', '.join(INPUT_SIZES)}")
    memory_sizes = section["memory-sizes"]
    if not isinstance(memory_sizes, list) or not all(_positive(m) for m in memory_sizes):
        raise SpecError(
            f"{where}.memory-sizes: {memory_sizes!r}; a list of positive integers (MB) is needed"
        )
    if len(set(memory_sizes)) != len(memory_sizes):
        raise SpecError(f"{where}.memory-sizes: {memory_sizes!r} names a size twice")
    for key in ("repetitions", "concurrent-invocations"):
        if not _positive(section[key]):
            raise SpecError(f"{where}.{key}: {section[key]!r}; a positive integer is needed")
    return PerfCostSettings(
        benchmark=benchmark,
        experiments=tuple(RunType(item) for item in types),
        input_size=size,
        repetitions=section["repetitions"],
        concurrent_invocations=section["concurrent-invocations"],
        memory_sizes=tuple(memory_sizes),
    )


def _storage(value: object, source: str, key: str = "") -> LocalStorage | None:
    """A storage description at ``key`` of ``source`` (the top of the file when empty)."""

    def at(*keys: str) -> str:
        path = ".".join(k for k in (key, *keys) if k)
        return f"{source}: {path}" if path else source

    section = _object(value, at())
    if "object" not in section and "nosql" not in section:
        # SeBS's old flat shape: the MinIO description itself.
        minio = _store(section, MinioStorage, at())
        return LocalStorage(object=minio) if minio is not None else None
    stores: dict[str, Any] = {}
    for kind, implementation, shape in (
        ("object", "minio", MinioStorage),
        ("nosql", "scylladb", ScyllaDBStorage),
    ):
        if section.get(kind) is None:
            continue
        entry = _object(section[kind], at(kind))
        declared = entry.get("type")
        if declared != implementation:
            raise SpecError(
                f"{at(kind, 'type')}: {declared!r}; SeBS's local platform knows "
                f"{implementation} only"
            )
        stores[kind] = _store(entry.get(implementation), shape, at(kind, implementation))
    if not any(stores.values()):
        return None
    return LocalStorage(**stores)


_Store = TypeVar("_Store", MinioStorage, ScyllaDBStorage)


def _store(entry: object, shape: type[_Store], where: str) -> _Store | None:
    if entry is None:
        return None
    try:
        store = msgspec.convert(_object(entry, where), shape)
    except msgspec.ValidationError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    return store if store.address else None


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: must be a JSON object, not {_json_kind(value)}")
    return value


def _boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{where}: {value!r}; true or false is needed")
    return value


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


# -- SeBS's echo in result files ----------------------------------------------


def result_config(config: SebsConfig) -> ResultConfig:
    """``config`` of an ExperimentResult, as SeBS serialises its config objects.

    ``experiments``: SeBS's ``ExperimentConfig.serialize()`` (overrides
    applied); ``deployment``: its ``LocalConfig.serialize()``.
    """
    experiments = config.experiments
    resources: dict[str, Any] = {}
    if config.storage is not None and config.storage.object is not None:
        resources["storage"] = msgspec.to_builtins(config.storage.object)
    if config.storage is not None and config.storage.nosql is not None:
        resources["nosql"] = msgspec.to_builtins(config.storage.nosql)
    resources["allocated_ports"] = []
    return ResultConfig(
        experiments={
            "update_code": experiments.update_code,
            "update_storage": experiments.update_storage,
            "download_results": experiments.download_results,
            "runtime": {
                "language": experiments.runtime.language,
                "version": experiments.runtime.version,
            },
            "flags": dict(experiments.flags),
            "experiments": dict(experiments.sections),
            "architecture": experiments.architecture,
            "container_deployment": experiments.container_deployment,
        },
        deployment={"name": "local", "region": "", "resources": resources},
    )
