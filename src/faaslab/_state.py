"""The deployment file: persisted state, versioned, written atomically.

The file is JSON (msgspec) and keeps the keys SeBS users' scripts read from
its ``out.json`` — ``functions[i].benchmark/name/instance_id/port/url``,
``inputs``, ``storage`` (and ``nosql``) — with faaslab's own fields beside them, never
instead. ``version`` says which layout wrote it: a newer one is refused, an
older one migrated (none exist yet); new fields always get defaults so that
files written before them still load.

Writes go to a temporary file in the same directory, are fsynced and renamed
over the old one (mode 0600: it holds storage credentials), so a reader never
sees half a file and a crash never leaves one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from ._errors import SpecError, StateError

__all__ = (
    "STATE_VERSION",
    "Checkpoint",
    "DeploymentState",
    "FunctionRecord",
    "PoolRecord",
    "SamplingRecord",
    "Status",
    "SupervisorRecord",
    "check_writable",
    "load_state",
    "write_state",
)

STATE_VERSION = 1
#: The marker that tells a faaslab deployment file from any other JSON.
MARKER = "faaslab.deployment"

#: "ended": it stopped on its own (its engine stayed unreachable too long,
#: ``ended_reason`` says); what the engine still holds of it goes with `stop`.
Status = Literal["starting", "running", "stopping", "stopped", "ended"]


class SebsRuntime(msgspec.Struct, frozen=True):
    language: str = "python"
    version: str = "3.11"


class SebsFunctionConfig(msgspec.Struct, frozen=True):
    """SeBS's ``FunctionConfig`` fields, as its out.json carries them."""

    timeout: int
    memory: int
    runtime: SebsRuntime = SebsRuntime()
    architecture: str = "x64"


class SebsTrigger(msgspec.Struct, frozen=True):
    url: str
    type: str = "HTTP"


class FunctionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One instance (container) — one entry of SeBS's ``functions`` list."""

    # SeBS's keys
    benchmark: str
    name: str
    hash: str
    config: SebsFunctionConfig
    triggers: list[SebsTrigger]
    instance_id: str
    #: ``127.0.0.1:<port>`` (no scheme), as SeBS writes it, so `curl $(jq -r .url)` works.
    url: str
    port: int
    # faaslab's
    function: str
    instance: str
    index: int
    restarts: int = 0
    state: str = "ready"


class PoolRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One function's pool: its scaling policy and its counters (faaslab's)."""

    function: str
    policy: str = "fixed"
    min_instances: int | None = None
    max_instances: int | None = None
    #: Instances alive now (starting, serving, idle or being torn down), and at most.
    alive: int = 0
    max_alive: int = 0
    starts: int = 0
    stops: int = 0
    cold_starts: int = 0
    #: Calls waiting for an instance.
    queued: int = 0


class SupervisorRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The detached process that owns the deployment (absent for in-process use)."""

    pid: int
    socket: str
    log: str
    started_at: float
    #: ``<pid>:<start time>`` (see ``_owner``): tells the supervisor from a reused pid.
    owner: str = ""


class SamplingRecord(msgspec.Struct, frozen=True, kw_only=True):
    interval_ms: float
    profile: str
    priority: str = ""
    #: The host sampler's pid. Shared by every deployment, it outlives a killed
    #: supervisor: the deployment's files end there when its connection closes.
    pid: int | None = None
    #: Where that host sampler listens (``unix:///...`` or ``tcp://host:port``).
    address: str = ""
    #: How often the host sampler died under the deployment and was replaced.
    restarts: int = 0


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Running memory aggregates, saved about every second."""

    at: float
    #: ``time.monotonic_ns()`` at the same moment: the clock of the profile's samples.
    monotonic_ns: int | None = None
    #: How often checkpoints are written (a dead supervisor died within this of ``at``).
    interval_s: float = 1.0
    #: One ``_measure.MeasurementRecord`` per container, as plain data.
    measurements: list[dict[str, Any]] = []


class DeploymentState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    faaslab: str = MARKER
    version: int = STATE_VERSION
    id: str
    status: Status
    created_at: float
    #: The spec it was started from, as plain data: a state file must stay
    #: loadable (to stop it) even when a function's code directory is gone.
    spec: dict[str, Any] = {}
    functions: list[FunctionRecord] = []
    #: Per function: its scaling policy and instance counters (instances come
    #: and go under a scaling policy; ``functions`` lists those alive).
    pools: list[PoolRecord] = []
    inputs: list[Any] = []
    #: The function each entry of ``inputs`` belongs to (faaslab's; SeBS has one).
    input_functions: list[str] = []
    storage: dict[str, Any] | None = None
    #: The NoSQL store (its endpoint, keys and tables), when one was started.
    nosql: dict[str, Any] | None = None
    supervisor: SupervisorRecord | None = None
    sampling: SamplingRecord | None = None
    checkpoint: Checkpoint | None = None
    stopped_at: float | None = None
    #: Where `stop` wrote the memory statistics.
    stats_path: str | None = None
    #: Why it ended on its own (status "ended").
    ended_reason: str | None = None
    #: Unix time its engine stopped answering, during an outage.
    engine_unreachable_since: float | None = None


_encoder = msgspec.json.Encoder()


def write_state(path: Path, state: DeploymentState) -> None:
    """Replace ``path`` with ``state`` atomically (temp file, fsync, rename), mode 0600."""
    data = msgspec.json.format(_encoder.encode(state), indent=2) + b"\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)


def load_state(path: Path) -> DeploymentState:
    """Read a deployment file; any problem is a StateError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StateError(f"{path}: no such deployment file") from None
    except OSError as exc:
        raise StateError(f"{path}: cannot read it: {exc.strerror}") from exc
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise StateError(f"{path}: corrupt or truncated JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("faaslab") != MARKER:
        raise StateError(f'{path}: not a faaslab deployment file (no "faaslab" marker)')
    version = data.get("version")
    if not isinstance(version, int):
        raise StateError(f'{path}: no valid "version" field')
    if version > STATE_VERSION:
        raise StateError(
            f"{path}: written by a newer faaslab (state version {version}; this one reads up "
            f"to {STATE_VERSION}): upgrade faaslab"
        )
    if version < 1:
        raise StateError(f"{path}: state version {version} was never written by faaslab")
    try:
        return msgspec.convert(data, DeploymentState)
    except (msgspec.ValidationError, SpecError) as exc:
        raise StateError(f"{path}: not a valid deployment file: {exc}") from exc


def check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, before anything is created."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a file path")
    if not directory.is_dir():
        raise SpecError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SpecError(f"{path}: directory {directory} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise SpecError(f"{path}: exists and is not writable")
