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

__all__ = (
    "DeploymentSpec",
    "FunctionSpec",
    "StorageSpec",
    "SwarmSpec",
    "load_deployment_spec",
)

#: Docker object names allow these; SeBS names look like ``110.dynamic-html``.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _check_handler(function_py: Path) -> None:
    """Check that ``function.py`` defines ``handler`` without importing it."""
    try:
        tree = ast.parse(function_py.read_bytes(), filename=str(function_py))
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
    #: Keep the data volume when the deployment stops (the container always goes).
    keep: bool = False
    #: Bound on the server answering an authenticated S3 call.
    ready_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:  # msgspec checks decoded specs; this catches built ones
            raise SpecError(f"storage.kind: {self.kind!r}; must be one of {', '.join(_KINDS)}")
        if self.kind == "external":
            if self.endpoint is None:
                raise SpecError("storage.endpoint: kind 'external' needs http://HOST:PORT")
            _check_endpoint(self.endpoint)
        elif self.endpoint is not None:
            raise SpecError(
                f"storage.endpoint: {self.endpoint!r} is only for kind 'external', "
                f"not {self.kind!r}"
            )
        if not self.ready_timeout_s > 0:
            raise SpecError(f"storage.ready_timeout_s: {self.ready_timeout_s}; must be > 0")

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
        for constraint in self.placement:
            if not _CONSTRAINT.match(constraint):
                raise SpecError(
                    f"placement: {constraint!r} for {self.name!r} is not a Swarm constraint "
                    "(like node.labels.role==bench)"
                )
        for key in self.env:
            if not key or "=" in key:
                raise SpecError(f"env: {key!r} is not a valid variable name")
        code = Path(self.code)
        if not code.is_dir():
            raise SpecError(f"code: {self.code!r} is not a directory")
        function_py = code / "function.py"
        if not function_py.is_file() and (code / "config.json").is_file():
            # A SeBS benchmark directory: its function lives in python/.
            function_py = code / "python" / "function.py"
        if not function_py.is_file():
            raise SpecError(f"code: {self.code!r} has no function.py")
        _check_handler(function_py)

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
    #: Restarts allowed per instance within ``restart_window_s`` before its function fails.
    max_restarts: int = 3
    restart_window_s: float = 60.0
    #: Bound on waiting for a free instance when all are busy.
    queue_timeout_s: float = 60.0
    #: The runtime image functions run in.
    image: str = "faaslab/python:3.11"
    #: A fixed deployment id (default: generated).
    deployment_id: str | None = None
    #: Object storage for the functions (MINIO_* in their environment).
    storage: StorageSpec = StorageSpec()
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
        for field in ("start_timeout_s", "queue_timeout_s", "restart_window_s"):
            if getattr(self, field) <= 0:
                raise SpecError(f"{field}: {getattr(self, field)}; must be > 0")
        if self.stop_grace_s < 0:
            raise SpecError(f"stop_grace_s: {self.stop_grace_s}; must be >= 0")
        if self.max_restarts < 0:
            raise SpecError(f"max_restarts: {self.max_restarts}; must be >= 0")
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
