"""What an experiment asks for: deployments to compare and a workload per function.

An experiment names several deployments (say the same function at 128 and
512 MB) and workloads; each workload drives one function, in every deployment
that has it unless ``deployments`` narrows it down. Workloads run in the order
given, one after the other, on each deployment; deployments run one after the
other, or all at once with ``parallel_deployments``. Everything is validated
when the spec is made, so a bad spec fails before any container starts.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from .._errors import SpecError
from .._spec import DeploymentSpec

__all__ = (
    "RESERVED_NAMES",
    "ExperimentDeployment",
    "ExperimentSpec",
    "LoopKind",
    "StartMode",
    "Workload",
    "load_experiment_spec",
)

#: ``warm``: one discarded warm-up call per pool instance first; ``cold``: every
#: invocation on a fresh instance (started, invoked once, stopped); ``natural``:
#: the pool as it is, so each instance's first call is cold.
StartMode = Literal["warm", "cold", "natural"]
#: ``closed``: N clients, each calls again as soon as its call returns;
#: ``open``: Poisson arrivals at ``rate`` per second, whatever the responses do;
#: ``trace``: every invocation of an Azure Functions 2019 trace, at its minute.
LoopKind = Literal["closed", "open", "trace"]

#: Names become directory and container names.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: Directory names of the results directory a deployment's directory may not take.
RESERVED_NAMES = frozenset({"inputs", "plots"})


class Workload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How one function is driven."""

    function: str
    #: Names of the deployments it runs on (default: every one that has ``function``).
    deployments: list[str] | None = None
    #: A name for records and the report (default ``<function>-<start>-<loop>``).
    label: str | None = None
    start: StartMode = "warm"
    loop: LoopKind = "closed"
    #: Closed loop: concurrent clients (default 1).
    clients: int | None = None
    #: Open loop: mean arrivals per second (Poisson).
    rate: float | None = None
    #: Open loop: calls in flight at most; an arrival beyond it is dropped and counted.
    max_in_flight: int = 100
    #: Trace loop: an Azure Functions 2019 trace (CSV: HashOwner,HashApp,HashFunction,
    #: Trigger,1,...,N: invocations per minute), streamed; every invocation is made.
    trace: str | None = None
    #: Trace loop: the rows replayed, ``HashFunction = "<this workload's function>"``
    #: (several hashes may map to it; other rows are ignored).
    trace_functions: dict[str, str] | None = None
    #: Trace loop: seconds of replay per trace minute (default 60).
    minute_s: float | None = None
    #: Bounds: the workload ends at the first one reached (at least one is needed,
    #: except for a trace loop, which ends with its trace).
    count: int | None = None
    duration_s: float | None = None
    #: The event: one object, a list cycled through, or a JSON/JSON-lines file. Without
    #: any, a SeBS benchmark gets the input its ``input.py`` generates (at ``sebs_size``,
    #: default the deployment's), any other function ``{}``.
    event: dict[str, Any] | None = None
    events: list[dict[str, Any]] | None = None
    event_file: str | None = None
    #: SeBS benchmarks: the size of the generated input (test, small, large).
    sebs_size: str | None = None
    #: Per-invocation timeout (default: the function's ``timeout_s``).
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.label is not None and not _NAME.match(self.label):
            raise SpecError(f"label: {self.label!r} is not a valid name")
        if self.loop != "trace":
            for field in ("trace", "trace_functions", "minute_s"):
                if getattr(self, field) is not None:
                    raise SpecError(f"{field}: only a trace loop (loop = 'trace') has a {field}")
        if self.loop == "trace":
            self._check_trace()
        elif self.loop == "closed":
            if self.rate is not None:
                raise SpecError("rate: only an open loop (loop = 'open') has a rate")
            if self.clients is not None and self.clients < 1:
                raise SpecError(f"clients: {self.clients}; must be >= 1")
        else:
            if self.rate is None:
                raise SpecError("rate: an open loop needs a rate (arrivals per second)")
            if not (self.rate > 0 and math.isfinite(self.rate)):
                raise SpecError(f"rate: {self.rate}; must be > 0 (arrivals per second)")
            if self.clients is not None:
                raise SpecError("clients: only a closed loop has clients (an open loop has a rate)")
            if self.max_in_flight < 1:
                raise SpecError(f"max_in_flight: {self.max_in_flight}; must be >= 1")
        if self.count is None and self.duration_s is None and self.loop != "trace":
            raise SpecError(f"{self.name}: give count, duration_s, or both")
        if self.count is not None and self.count < 1:
            raise SpecError(f"count: {self.count}; must be >= 1")
        if self.duration_s is not None and not self.duration_s > 0:
            raise SpecError(f"duration_s: {self.duration_s}; must be > 0")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise SpecError(f"timeout_s: {self.timeout_s}; must be > 0")
        sources = [
            field
            for field in ("event", "events", "event_file", "sebs_size")
            if getattr(self, field) is not None
        ]
        if len(sources) > 1:
            raise SpecError(f"{' and '.join(sources)}: give one source of events, not several")
        if self.events is not None and not self.events:
            raise SpecError("events: empty; give at least one event")
        if self.event_file is not None and not Path(self.event_file).is_file():
            raise SpecError(f"event_file: {self.event_file!r} is not a file")
        if self.sebs_size is not None and not self.sebs_size:
            raise SpecError("sebs_size: empty; SeBS sizes are test, small and large")

    def _check_trace(self) -> None:
        if self.rate is not None or self.clients is not None:
            raise SpecError(
                "rate, clients: a trace loop makes the trace's invocations at their times"
            )
        if self.trace is None:
            raise SpecError("trace: a trace loop needs a trace (an Azure Functions 2019 CSV)")
        if not Path(self.trace).is_file():
            raise SpecError(f"trace: {self.trace!r} is not a file")
        if not self.trace_functions:
            raise SpecError(
                'trace_functions: a trace loop needs { "<HashFunction>" = "<function>" }'
            )
        for trace_function, function in self.trace_functions.items():
            if function != self.function:
                raise SpecError(
                    f"trace_functions: {trace_function!r} = {function!r}, but this workload "
                    f"drives {self.function!r}; a trace workload replays rows onto its own "
                    "function (one workload per function)"
                )
        minute_s = self.minute_s
        if minute_s is not None and not (math.isfinite(minute_s) and minute_s > 0):
            raise SpecError(f"minute_s: {minute_s}; must be seconds > 0")

    @property
    def seconds_per_minute(self) -> float:
        """A trace loop's seconds of replay per trace minute."""
        return self.minute_s if self.minute_s is not None else 60.0

    @property
    def name(self) -> str:
        return self.label or f"{self.function}-{self.start}-{self.loop}"

    @property
    def concurrency(self) -> int:
        """Closed loop: its clients. Open loop: its in-flight cap."""
        return (self.clients or 1) if self.loop == "closed" else self.max_in_flight


class ExperimentDeployment(DeploymentSpec, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One deployment to compare: a named :class:`DeploymentSpec`, sampled every ms by default."""

    name: str
    measure_interval_ms: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _NAME.match(self.name):
            raise SpecError(
                f"name: {self.name!r} is not a valid deployment name "
                "(letters, digits, '_', '.', '-'; at most 63; it names a directory)"
            )
        if self.name in RESERVED_NAMES:
            raise SpecError(f"name: {self.name!r} is reserved for the results directory's own use")

    def deployment_spec(
        self, deployment_id: str, *, sebs_size: str | None = None
    ) -> DeploymentSpec:
        """The plain DeploymentSpec to open: with its id, and the SeBS input size asked for."""
        fields = msgspec.structs.asdict(self)
        del fields["name"]
        fields["deployment_id"] = self.deployment_id or deployment_id
        if sebs_size is not None:
            fields["sebs_size"] = sebs_size
        return DeploymentSpec(**fields)

    def has_function(self, name: str) -> bool:
        return any(f.name == name for f in self.functions)


class ExperimentSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Deployments to compare and how to drive their functions."""

    deployments: list[ExperimentDeployment]
    workloads: list[Workload]
    name: str = "experiment"
    description: str = ""
    #: Every workload is run this many times on each deployment (the deployment is kept).
    repetitions: int = 1
    #: Seed of the open-loop arrival times (default: drawn, and written to run.json).
    seed: int | None = None
    #: Run all deployments at once (they then share the machine's CPUs).
    parallel_deployments: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise SpecError(f"name: {self.name!r} is not a valid experiment name")
        if not self.deployments:
            raise SpecError("deployments: an experiment needs at least one deployment")
        if not self.workloads:
            raise SpecError("workloads: an experiment needs at least one workload")
        if self.repetitions < 1:
            raise SpecError(f"repetitions: {self.repetitions}; must be >= 1")
        names = [d.name for d in self.deployments]
        for name in names:
            if names.count(name) > 1:
                raise SpecError(f"deployments: duplicate deployment name {name!r}")
        ids = [d.deployment_id for d in self.deployments if d.deployment_id is not None]
        if len(set(ids)) < len(ids):
            raise SpecError("deployments: two deployments have the same deployment_id")
        labels = [w.name for w in self.workloads]
        for label in labels:
            if labels.count(label) > 1:
                raise SpecError(
                    f"workloads: two workloads are named {label!r}; give them distinct labels"
                )
        for workload in self.workloads:
            self._check_targets(workload, names)
        for deployment in self.deployments:
            self.sebs_size_of(deployment)

    def _check_targets(self, workload: Workload, names: list[str]) -> None:
        if workload.deployments is None:
            if not any(d.has_function(workload.function) for d in self.deployments):
                raise SpecError(
                    f"workloads: no deployment has a function named {workload.function!r}"
                )
            return
        if not workload.deployments:
            raise SpecError(f"{workload.name}: deployments is empty")
        for target in workload.deployments:
            if target not in names:
                raise SpecError(
                    f"{workload.name}: no deployment named {target!r} (known: {', '.join(names)})"
                )
            if not self.deployment(target).has_function(workload.function):
                raise SpecError(
                    f"{workload.name}: deployment {target!r} has no function {workload.function!r}"
                )

    def deployment(self, name: str) -> ExperimentDeployment:
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        raise SpecError(f"no deployment named {name!r}")

    def sebs_size_of(self, deployment: ExperimentDeployment) -> str | None:
        """The SeBS input size the deployment's workloads ask for (None: the deployment's)."""
        sizes = {w.sebs_size for w in self.workloads_of(deployment) if w.sebs_size is not None}
        if len(sizes) > 1:
            # A deployment generates one input per benchmark, when it starts.
            raise SpecError(
                f"deployments: {deployment.name!r} has workloads asking for SeBS sizes "
                f"{', '.join(sorted(sizes))}; one deployment has one input size: compare "
                "sizes with one deployment each"
            )
        return sizes.pop() if sizes else None

    def workloads_of(self, deployment: ExperimentDeployment) -> list[Workload]:
        """The workloads that run on ``deployment``, in order."""
        return [
            w
            for w in self.workloads
            if (w.deployments is None and deployment.has_function(w.function))
            or (w.deployments is not None and deployment.name in w.deployments)
        ]


def _resolve_paths(data: Any, base: Path) -> None:
    """Make the spec's relative paths relative to the spec file, as users expect."""
    if not isinstance(data, dict):
        return
    for deployment in data.get("deployments") or []:
        if isinstance(deployment, dict):
            if isinstance(deployment.get("data_dir"), str):
                deployment["data_dir"] = str((base / deployment["data_dir"]).resolve())
            for function in deployment.get("functions") or []:
                if isinstance(function, dict) and isinstance(function.get("code"), str):
                    function["code"] = str((base / function["code"]).resolve())
    for workload in data.get("workloads") or []:
        for field in ("event_file", "trace"):
            if isinstance(workload, dict) and isinstance(workload.get(field), str):
                workload[field] = str((base / workload[field]).resolve())


def load_experiment_spec(path: str | Path) -> ExperimentSpec:
    """Load an experiment from a TOML or JSON file (paths in it are relative to the file).

    Unknown keys and wrong types raise :class:`SpecError` naming the field,
    e.g. ``Expected `int`, got `str` - at `$.workloads[0].clients```.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror}") from exc
    try:
        data: Any = (
            tomllib.loads(raw.decode()) if path.suffix == ".toml" else msgspec.json.decode(raw)
        )
    except (tomllib.TOMLDecodeError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    _resolve_paths(data, path.parent)
    try:
        return msgspec.convert(data, ExperimentSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"{path}: {exc}") from exc
