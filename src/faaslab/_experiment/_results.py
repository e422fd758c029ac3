"""The results directory: its layout, run.json, and keeping it reproducible.

::

    RESULTS_DIR/
      run.json              how the run went: times, seed, deployments, workload runs
      spec.json             the spec that ran, runnable again from here
      spec.source.toml      the file it was loaded from, as written (when there was one)
      inputs/code/<fn>/     copies of the function code (up to COPY_LIMIT_BYTES each)
      inputs/events/        copies of event files
      inputs/traces/        copies of trace files (up to COPY_LIMIT_BYTES each)
      invocations.jsonl     one record per invocation
      summary.json          per deployment and function, cold and warm apart
      <deployment>/memory_stats.json     SeBS's shape
      <deployment>/memory_report.json    faaslab's typed report
      <deployment>/memory_samples.jsonl  per instance, for the memory-over-time plot
      <deployment>/scaling.json          per function: its pool's counters, instances over time
      plots/*.png           written by `faaslab report`
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from .._errors import SpecError
from ._spec import ExperimentSpec, LoopKind, StartMode
from ._summary import Status

__all__ = (
    "CODE_DIR",
    "COPY_LIMIT_BYTES",
    "INVOCATIONS",
    "PLOTS_DIR",
    "RUN",
    "SAMPLES",
    "SPEC",
    "SUMMARY",
    "DeploymentRunInfo",
    "RunInfo",
    "WorkloadRunInfo",
    "prepare_results_dir",
    "read_run_info",
    "snapshot_spec",
    "write_json",
)

INVOCATIONS = "invocations.jsonl"
SUMMARY = "summary.json"
RUN = "run.json"
SPEC = "spec.json"
SPEC_SOURCE = "spec.source"
# Deployments may not take these two names (_spec.RESERVED_NAMES).
INPUTS_DIR = "inputs"
CODE_DIR = f"{INPUTS_DIR}/code"
EVENTS_DIR = f"{INPUTS_DIR}/events"
TRACES_DIR = f"{INPUTS_DIR}/traces"
PLOTS_DIR = "plots"
SAMPLES = "memory_samples.jsonl"
#: Function code bigger than this is not copied (its hash is recorded instead).
COPY_LIMIT_BYTES = 20 * 1024 * 1024


class WorkloadRunInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One workload's run on one deployment (one repetition)."""

    deployment: str
    workload: str
    function: str
    start: StartMode
    loop: LoopKind
    repetition: int
    #: Seconds since the run began (monotonic), like the records' t_*.
    t_start: float
    t_end: float
    #: Calls made (records written) and, in an open loop, arrivals dropped at the cap.
    calls: int
    dropped: int = 0
    requested_rate: float | None = None
    #: Why it ended before its bound, if it did ("interrupted", "function failed: ...").
    stopped: str | None = None


class DeploymentRunInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    deployment_id: str
    #: Memory limit per function (MB), for the report.
    memory_mb: dict[str, int]
    #: Why the deployment failed (it could not start, or broke down), if it did.
    error: str | None = None


class RunInfo(msgspec.Struct, frozen=True, kw_only=True):
    """run.json."""

    version: int = 1
    experiment: str
    faaslab_version: str
    status: Status
    started_at: str
    finished_at: str | None = None
    #: time.time() when the run's clock read 0: maps records' t_* to unix time.
    epoch_unix: float
    #: The open-loop seed actually used.
    seed: int
    records: int = 0
    errors: int = 0
    error: str | None = None
    deployments: list[DeploymentRunInfo] = []
    workload_runs: list[WorkloadRunInfo] = []
    #: Function code directory -> {"copy": relative path or None, "sha256": ...}.
    code: dict[str, dict[str, str | None]] = {}
    host: dict[str, Any] = {}


def write_json(path: Path, value: Any) -> None:
    """Pretty JSON, written whole or not at all."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(msgspec.json.format(msgspec.json.encode(value), indent=2) + b"\n")
    os.replace(temporary, path)


def read_run_info(results: Path) -> RunInfo:
    try:
        return msgspec.json.decode((results / RUN).read_bytes(), type=RunInfo)
    except FileNotFoundError as exc:
        raise SpecError(f"{results}: not a faaslab results directory (no {RUN})") from exc
    except (msgspec.DecodeError, OSError) as exc:
        raise SpecError(f"{results / RUN}: unreadable: {exc}") from exc


def prepare_results_dir(results: Path, *, overwrite: bool) -> None:
    """Create the directory; refuse one that holds anything, unless ``overwrite``.

    ``overwrite`` only replaces an earlier run's results (a directory with
    run.json), and removes only what a run writes: other files stay.
    """
    if results.exists() and not results.is_dir():
        raise SpecError(f"{results}: exists and is not a directory")
    if results.is_dir() and any(results.iterdir()):
        if not overwrite:
            raise SpecError(
                f"{results}: exists and is not empty; give another directory, or "
                "--overwrite (overwrite=True) to replace an earlier run's results"
            )
        if not (results / RUN).is_file():
            raise SpecError(
                f"{results}: refusing to overwrite a directory that holds no faaslab results "
                f"(no {RUN})"
            )
        _remove_earlier_run(results)
    results.mkdir(parents=True, exist_ok=True)


def _remove_earlier_run(results: Path) -> None:
    names = [INVOCATIONS, SUMMARY, SPEC, INPUTS_DIR, PLOTS_DIR]
    with contextlib.suppress(SpecError):  # a run.json we cannot read: remove what we know of
        names += [d.name for d in read_run_info(results).deployments]
    names += [p.name for p in results.glob(f"{SPEC_SOURCE}.*")]
    names.append(RUN)  # last: it marks the directory as ours
    for name in names:
        path = results / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


def tree_digest(directory: Path) -> tuple[str, int]:
    """SHA-256 over the relative paths and contents of a directory's files, and their size."""
    digest = hashlib.sha256()
    size = 0
    for path in _files(directory):
        data = path.read_bytes()
        size += len(data)
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest(), size


def _unique(base: Path, name: str) -> Path:
    candidate, n = base / name, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{name}-{n}"
    return candidate


def snapshot_spec(
    spec: ExperimentSpec, results: Path, source: Path | None
) -> dict[str, dict[str, str | None]]:
    """Write spec.json (and a copy of the source file), with code and event files copied.

    spec.json points at the copies, relative to the results directory, so
    ``faaslab run RESULTS_DIR/spec.json`` reruns the same code and events.
    Returns what run.json records of each code directory.
    """
    data: Any = msgspec.to_builtins(spec)
    code: dict[str, dict[str, str | None]] = {}
    copies: dict[str, str] = {}
    for deployment in data["deployments"]:
        for function in deployment["functions"]:
            original = function["code"]
            if original not in copies:
                directory = Path(original)
                digest, size = tree_digest(directory)
                copy = None
                if size <= COPY_LIMIT_BYTES:
                    target = _unique(results / CODE_DIR, function["name"])
                    shutil.copytree(directory, target, ignore=shutil.ignore_patterns("__pycache__"))
                    copy = str(target.relative_to(results))
                copies[original] = copy or original
                code[original] = {"copy": copy, "sha256": digest}
            function["code"] = copies[original]
    for workload in data["workloads"]:
        if workload.get("event_file"):
            original = Path(workload["event_file"])
            target = _unique(results / EVENTS_DIR, original.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, target)
            workload["event_file"] = str(target.relative_to(results))
        if workload.get("trace") and Path(workload["trace"]).stat().st_size <= COPY_LIMIT_BYTES:
            original = Path(workload["trace"])
            target = _unique(results / TRACES_DIR, original.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, target)
            workload["trace"] = str(target.relative_to(results))
    write_json(results / SPEC, data)
    if source is not None:
        shutil.copyfile(source, results / f"{SPEC_SOURCE}{source.suffix}")
    return code
