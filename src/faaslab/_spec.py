"""What the user asks for: function and deployment specs.

Specs are frozen msgspec Structs, built in code or loaded from TOML/JSON, and
validated when they are made, so a bad spec fails before anything touches the
engine. Every problem is a :class:`SpecError` naming the field and the value.
"""

from __future__ import annotations

import ast
import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from ._errors import SpecError
from ._scaling_spec import (
    DEFAULT_KEEP_ALIVE_S,
    POLICIES,
    PolicyName,
    ScalingSpec,
    scaling_spec_from_data,
)
from ._util import parse_file

__all__ = (
    "DEFAULT_KEEP_ALIVE_S",
    "FUNCTION_LANGUAGES",
    "POLICIES",
    "DeploymentSpec",
    "FunctionLanguage",
    "FunctionSpec",
    "NoSQLSpec",
    "PolicyName",
    "ScalingSpec",
    "StorageSpec",
    "SwarmSpec",
    "load_deployment_spec",
    "scaling_spec_from_data",
)

#: Lambda's ephemeral storage ranges up to 10 GB (10240 MB).
MAX_TMP_MB = 10240

#: Docker object names allow these; SeBS names look like ``110.dynamic-html``.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class FunctionLanguage(msgspec.Struct, frozen=True):
    """What a function of one language looks like to its user."""

    #: The file in the function directory that defines ``handler``.
    entry_file: str
    #: The language versions faaslab's runtime images carry (SeBS's ``--language-version``).
    versions: tuple[str, ...]

    def version_of(self, requested: str | None) -> str | None:
        """The version a request names ("18" and "18.20" are 18; None: the default), or None."""
        if requested is None:
            return self.versions[0]
        for version in self.versions:
            if requested == version or requested.startswith(f"{version}."):
                return version
        return None


#: The languages faaslab runs (how each is run: ``_runtime.language_runtime``).
FUNCTION_LANGUAGES: dict[str, FunctionLanguage] = {
    "python": FunctionLanguage("function.py", ("3.11",)),
    # Debian 12's nodejs, which faaslab/nodejs:18 is built from.
    "nodejs": FunctionLanguage("function.js", ("18",)),
}


def _check_language(name: str, language: str, version: str | None) -> FunctionLanguage:
    known = FUNCTION_LANGUAGES.get(language)
    if known is None:
        raise SpecError(
            f"language: {language!r} for {name!r} is not supported; faaslab runs "
            f"{', '.join(sorted(FUNCTION_LANGUAGES))}"
        )
    if known.version_of(version) is None:
        raise SpecError(
            f"language_version: {version!r} for {name!r}; faaslab's {language} runtime is "
            f"{', '.join(known.versions)}"
        )
    return known


def _entry_of(code: Path, language: str, entry_file: str) -> Path:
    """The file defining ``handler``: in the directory, or in a SeBS benchmark's ``<language>/``."""
    entry = code / entry_file
    if entry.is_file() or not (code / "config.json").is_file():
        return entry
    return code / language / entry_file


def _check_handler(function_py: Path) -> None:
    """Check that ``function.py`` defines ``handler`` without importing it."""
    try:
        tree = parse_file(function_py)
    except SyntaxError as exc:
        raise SpecError(
            f"code: {function_py} does not parse: {exc.msg} (line {exc.lineno})"
        ) from exc
    except OSError as exc:
        raise SpecError(f"code: cannot read {function_py}: {exc.strerror}") from exc
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "handler":
            return
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "handler" for t in node.targets
        ):
            return
        if isinstance(node, ast.ImportFrom | ast.Import) and any(
            (alias.asname or alias.name) == "handler" for alias in node.names
        ):
            return
    raise SpecError(f"code: {function_py} defines no top-level `handler(event)`")


StorageKind = Literal["seaweedfs", "minio", "external", "none"]
_KINDS: tuple[str, ...] = ("seaweedfs", "minio", "external", "none")


class StorageSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The object storage of a deployment.

    - ``seaweedfs`` (default): a SeaweedFS container on the deployment's network;
    - ``minio``: the ``minio/minio`` image, when the engine has it or can pull it;
    - ``external``: an S3 endpoint that already runs (``endpoint``,
      ``http://HOST:PORT``), keys from ``FAASLAB_S3_ACCESS_KEY`` /
      ``FAASLAB_S3_SECRET_KEY``; no container is started;
    - ``none``: no storage; functions get no ``MINIO_*`` variables.
    """

    kind: StorageKind = "seaweedfs"
    #: ``http://HOST:PORT`` of an external endpoint (kind ``external`` only).
    endpoint: str | None = None
    #: ``HOST:PORT`` at which function containers reach an external endpoint,
    #: when not the host's (a SeBS store: its container address, while the host
    #: uses the port published on 127.0.0.1). Default: the endpoint's.
    function_address: str | None = None
    #: Keep the data volume when the deployment stops (the container always goes).
    keep: bool = False
    #: Bound on the server answering an authenticated S3 call.
    ready_timeout_s: float = 60.0
    #: Memory (MB, swap not allowed) and CPUs of the server's container.
    memory_mb: int = 1024
    cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:  # msgspec checks decoded specs; this catches built ones
            raise SpecError(f"storage.kind: {self.kind!r}; must be one of {', '.join(_KINDS)}")
        if self.kind == "external":
            if self.endpoint is None:
                raise SpecError("storage.endpoint: kind 'external' needs http://HOST:PORT")
            _check_endpoint(self.endpoint)
        elif self.endpoint is not None or self.function_address is not None:
            raise SpecError(
                f"storage.endpoint/function_address: {self.endpoint or self.function_address!r} "
                f"is only for kind 'external', not {self.kind!r}"
            )
        if self.function_address is not None and not re.fullmatch(
            r"[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}", self.function_address
        ):
            raise SpecError(
                f"storage.function_address: {self.function_address!r}; expected HOST:PORT"
            )
        if not self.ready_timeout_s > 0:
            raise SpecError(f"storage.ready_timeout_s: {self.ready_timeout_s}; must be > 0")
        if self.memory_mb < 64:
            raise SpecError(f"storage.memory_mb: {self.memory_mb}; the server needs >= 64")
        if not 0 < self.cpus <= 64:
            raise SpecError(f"storage.cpus: {self.cpus}; must be in (0, 64]")

    @property
    def address(self) -> str | None:
        """``HOST:PORT`` of an external endpoint (what S3 clients take), else None."""
        if self.endpoint is None:
            return None
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        return f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"


def _check_endpoint(endpoint: str) -> None:
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise SpecError(f"storage.endpoint: {endpoint!r} is not a URL: {exc}") from exc
    # The in-container helper speaks plain HTTP (as SeBS's does), so https is refused
    # here rather than failing inside every function.
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise SpecError(f"storage.endpoint: {endpoint!r}; expected http://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SpecError(
            f"storage.endpoint: {endpoint!r}; expected http://HOST:PORT without path or user"
        )


BackendKind = Literal["docker", "swarm"]
PublishMode = Literal["auto", "gateway", "host"]
_BACKENDS: tuple[str, ...] = ("docker", "swarm")
_PUBLISH: tuple[str, ...] = ("auto", "gateway", "host")
#: A Swarm placement constraint: ``node.labels.role==bench``, ``node.role!=manager``.
_CONSTRAINT = re.compile(r"^\s*[A-Za-z][A-Za-z0-9_.-]*\s*(==|!=)\s*\S.*$")


class SwarmSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How a deployment on Docker Swarm is reached (``backend = "swarm"`` only).

    - ``publish = "gateway"``: the host reaches every task through a small
      forwarding container on the engine faaslab talks to, attached to the
      deployment's overlay network and published on ``address`` only (default
      127.0.0.1). Nothing is published through the ingress mesh.
    - ``publish = "host"``: every task publishes its port in host mode on its
      own node (Swarm binds every interface of that node), reached at the
      node's advertise address.
    - ``publish = "auto"`` (default): gateway on a one-node swarm, host mode
      on several.

    ``registry`` (``HOST:PORT``) is where the images go when the swarm has
    more than one node, so that no task depends on an image one node holds.
    """

    address: str = "127.0.0.1"
    publish: PublishMode = "auto"
    registry: str | None = None
    #: Bound on a node's sampler task running and answering.
    sampler_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise SpecError(
                f"swarm.address: {self.address!r} is not an IP address (the address the "
                "gateway publishes on, e.g. 127.0.0.1)"
            ) from None
        if self.publish not in _PUBLISH:
            choices = ", ".join(_PUBLISH)
            raise SpecError(f"swarm.publish: {self.publish!r}; must be one of {choices}")
        if self.registry is not None:
            host, _, port = self.registry.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in self.registry:
                raise SpecError(f"swarm.registry: {self.registry!r}; expected HOST:PORT")
        if not self.sampler_timeout_s > 0:
            raise SpecError(f"swarm.sampler_timeout_s: {self.sampler_timeout_s}; must be > 0")


NoSQLKind = Literal["auto", "dynalite", "scylladb", "none"]
_NOSQL_KINDS: tuple[str, ...] = ("auto", "dynalite", "scylladb", "none")


class NoSQLSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The NoSQL store (the DynamoDB API) of a deployment.

    - ``auto`` (default): a ``dynalite`` server, started only when a function
      needs one (a SeBS benchmark whose ``config.json`` lists the ``nosql``
      module or whose ``input.py`` has ``allocate_nosql``);
    - ``dynalite``: always started (built offline, ``faaslab/dynalite``);
    - ``scylladb``: ScyllaDB's Alternator, as SeBS runs it, when the engine
      has or can pull its image;
    - ``none``: never; a function that needs one is refused before anything starts.
    """

    kind: NoSQLKind = "auto"
    #: Keep the data volume when the deployment stops (the container always goes).
    keep: bool = False
    #: Bound on the server answering a DynamoDB call.
    ready_timeout_s: float = 60.0
    #: Memory limit of the server container; None: the server's own default.
    memory_mb: int | None = None
    cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _NOSQL_KINDS:
            raise SpecError(f"nosql.kind: {self.kind!r}; must be one of {', '.join(_NOSQL_KINDS)}")
        if not self.ready_timeout_s > 0:
            raise SpecError(f"nosql.ready_timeout_s: {self.ready_timeout_s}; must be > 0")
        if self.memory_mb is not None and self.memory_mb < 64:
            raise SpecError(f"nosql.memory_mb: {self.memory_mb}; must be >= 64")
        if not 0 < self.cpus <= 64:
            raise SpecError(f"nosql.cpus: {self.cpus}; must be in (0, 64]")


class FunctionSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One function: its code directory and how to run its instances."""

    name: str
    #: Directory holding ``function.py`` (with ``handler(event)``) and maybe ``requirements.txt``.
    code: str
    instances: int = 1
    #: Memory limit per instance in MB (MiB, as Docker counts); swap is not allowed.
    memory_mb: int = 256
    cpus: float = 1.0
    env: dict[str, str] = {}
    #: Per-invocation timeout.
    timeout_s: float = 60.0
    #: Invocations one instance serves at once (1 = Lambda semantics).
    concurrency: int = 1
    #: ``python`` (``function.py``) or ``nodejs`` (``function.js`` exporting an async
    #: ``handler(event)``, maybe a ``package.json``).
    language: str = "python"
    #: SeBS's ``--language-version``: picks ``requirements.txt.<v>`` / ``package.json.<v>``
    #: variants; default: the version faaslab's image carries (3.11, 18).
    language_version: str | None = None
    #: The runtime image (default: the deployment's ``image``, else the language's own).
    image: str | None = None
    #: Size of the writable /tmp in MB, Lambda's "ephemeral storage" (512 MB by
    #: default, up to 10240). It is a tmpfs: what is written there counts
    #: against ``memory_mb``, as tmpfs pages do in the container's cgroup.
    tmp_mb: int = 512
    #: How many instances run, and when (default: ``instances``, always).
    scaling: ScalingSpec = ScalingSpec()
    #: Swarm placement constraints of every instance (``node.labels.role==bench``).
    placement: list[str] = []
    #: Swarm: spread the instances over the nodes the constraints allow, round robin.
    spread: bool = True

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise SpecError(
                f"name: {self.name!r} is not a valid function name "
                "(letters, digits, '_', '.', '-'; starts with a letter or digit; at most 63)"
            )
        if self.instances < 1:
            raise SpecError(f"instances: {self.instances} for {self.name!r}; must be >= 1")
        if self.memory_mb < 6:
            raise SpecError(f"memory_mb: {self.memory_mb} for {self.name!r}; Docker needs >= 6")
        if not 0 < self.cpus <= 64:
            raise SpecError(f"cpus: {self.cpus} for {self.name!r}; must be in (0, 64]")
        if self.timeout_s <= 0:
            raise SpecError(f"timeout_s: {self.timeout_s} for {self.name!r}; must be > 0")
        if self.concurrency < 1:
            raise SpecError(f"concurrency: {self.concurrency} for {self.name!r}; must be >= 1")
        if not 1 <= self.tmp_mb <= MAX_TMP_MB:
            raise SpecError(
                f"tmp_mb: {self.tmp_mb} for {self.name!r}; must be in [1, {MAX_TMP_MB}] "
                "(as Lambda's ephemeral storage)"
            )
        if self.scaling.policy != "fixed" and self.instances != 1:
            raise SpecError(
                f"instances: {self.instances} for {self.name!r} with scaling policy "
                f"{self.scaling.policy!r}; it scales between scaling.min_instances and "
                "scaling.max_instances (instances is for policy 'fixed')"
            )
        for constraint in self.placement:
            if not _CONSTRAINT.match(constraint):
                raise SpecError(
                    f"placement: {constraint!r} for {self.name!r} is not a Swarm constraint "
                    "(like node.labels.role==bench)"
                )
        for key in self.env:
            if not key or "=" in key:
                raise SpecError(f"env: {key!r} is not a valid variable name")
        language = _check_language(self.name, self.language, self.language_version)
        code = Path(self.code)
        if not code.is_dir():
            raise SpecError(f"code: {self.code!r} is not a directory")
        entry = _entry_of(code, self.language, language.entry_file)
        if not entry.is_file():
            raise SpecError(
                f"code: {self.code!r} has no {entry.relative_to(code)} "
                f"(a {self.language} function needs one)"
            )
        if self.language == "python":
            _check_handler(entry)
        # A Node.js handler export is checked by loading the function in its
        # runtime before any instance starts (the deployment's load check).

    @property
    def code_path(self) -> Path:
        return Path(self.code).resolve()


class DeploymentSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Functions deployed, sampled and supervised together."""

    functions: list[FunctionSpec]
    #: Memory sampling interval in ms; fractions allowed; -1 disables sampling.
    measure_interval_ms: float = -1
    #: Remove containers at stop (SeBS's --remove-containers); False keeps them for debugging.
    remove_containers: bool = True
    #: Bound on an instance becoming ready (its /alive answering).
    start_timeout_s: float = 30.0
    #: SIGTERM grace before SIGKILL at stop.
    stop_grace_s: float = 2.0
    #: Crashes (deaths while idle, failed restarts) allowed per instance within
    #: ``restart_window_s`` before its function is refused for good; None (the
    #: default) never refuses it. Deaths during an invocation never count:
    #: that call fails and the next gets a fresh instance (``_deployment._restart``).
    max_restarts: int | None = None
    restart_window_s: float = 60.0
    #: The crash backoff: first delay, doubling per crash in a row, capped
    #: (kubelet's CrashLoopBackOff scaled for local runs: 10 s → 1 s, 300 s → 30 s).
    restart_backoff_s: float = 1.0
    restart_backoff_max_s: float = 30.0
    #: How long a deployment whose engine stopped answering waits for it to come
    #: back (then its instances are recreated) before it ends itself.
    engine_timeout_s: float = 120.0
    #: Bound on waiting for a free instance when all are busy.
    queue_timeout_s: float = 60.0
    #: The runtime image of every function that names none (default: each
    #: function's language's own: faaslab/python:3.11, faaslab/nodejs:18).
    image: str | None = None
    #: A fixed deployment id (default: generated).
    deployment_id: str | None = None
    #: Object storage for the functions (MINIO_* in their environment).
    storage: StorageSpec = StorageSpec()
    #: NoSQL storage (the DynamoDB API; NOSQL_STORAGE_* in the functions' environment).
    nosql: NoSQLSpec = NoSQLSpec()
    #: For SeBS benchmark directories: the input size and the benchmark data.
    sebs_size: str = "test"
    data_dir: str | None = None
    #: Where instances run: "docker" (this host's engine) or "swarm" (services on Docker Swarm).
    backend: BackendKind = "docker"
    #: How a Swarm deployment is reached (backend "swarm").
    swarm: SwarmSpec = SwarmSpec()

    def __post_init__(self) -> None:
        if not self.functions:
            raise SpecError("functions: a deployment needs at least one function")
        seen: set[str] = set()
        for function in self.functions:
            if function.name in seen:
                raise SpecError(f"functions: duplicate function name {function.name!r}")
            seen.add(function.name)
        interval = self.measure_interval_ms
        if interval != -1 and interval <= 0:
            raise SpecError(
                f"measure_interval_ms: {interval}; must be > 0, or -1 to disable sampling"
            )
        for field in (
            "start_timeout_s",
            "queue_timeout_s",
            "restart_window_s",
            "restart_backoff_s",
            "engine_timeout_s",
        ):
            if getattr(self, field) <= 0:
                raise SpecError(f"{field}: {getattr(self, field)}; must be > 0")
        if self.stop_grace_s < 0:
            raise SpecError(f"stop_grace_s: {self.stop_grace_s}; must be >= 0")
        if self.max_restarts is not None and self.max_restarts < 0:
            raise SpecError(f"max_restarts: {self.max_restarts}; must be >= 0 (or unset)")
        if self.restart_backoff_max_s < self.restart_backoff_s:
            raise SpecError(
                f"restart_backoff_max_s: {self.restart_backoff_max_s}; must be >= "
                f"restart_backoff_s ({self.restart_backoff_s})"
            )
        if self.sebs_size not in ("test", "small", "large"):
            raise SpecError(f"sebs_size: {self.sebs_size!r}; SeBS sizes are test, small, large")
        if self.backend not in _BACKENDS:
            raise SpecError(f"backend: {self.backend!r}; must be one of {', '.join(_BACKENDS)}")
        if self.backend != "swarm":
            for function in self.functions:
                if function.placement:
                    raise SpecError(
                        f"placement: {function.name!r} has placement constraints, which only "
                        "backend 'swarm' honours"
                    )
        if self.deployment_id is not None and not _NAME.match(self.deployment_id):
            raise SpecError(f"deployment_id: {self.deployment_id!r} is not a valid id")

    @property
    def sampling(self) -> bool:
        return self.measure_interval_ms != -1

    def function(self, name: str) -> FunctionSpec:
        for function in self.functions:
            if function.name == name:
                return function
        known = ", ".join(f.name for f in self.functions)
        raise SpecError(f"no function named {name!r} (this deployment has: {known})")


def load_deployment_spec(path: str | Path) -> DeploymentSpec:
    """Load a deployment spec from a TOML or JSON file.

    Relative ``code`` paths are taken relative to the spec file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror}") from exc
    try:
        text = raw.decode()
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else msgspec.json.decode(raw)
    except (tomllib.TOMLDecodeError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    if isinstance(data, dict):
        for function in data.get("functions") or []:
            if isinstance(function, dict) and isinstance(function.get("code"), str):
                function["code"] = str((path.parent / function["code"]).resolve())
    try:
        return msgspec.convert(data, DeploymentSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"{path}: {exc}") from exc
