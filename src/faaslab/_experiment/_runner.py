"""``run_experiment``: deployments opened, workloads driven, everything recorded.

Records stream to disk as calls end; each deployment's memory statistics
and samples are written when it stops; summary.json and run.json are
written last, from what exists, also when the run is cancelled (Ctrl-C) or
fails — under a shielded scope, so an interrupted run leaves a complete,
readable directory and no containers.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import secrets
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import anyio
import msgspec
import structlog

from .._deployment import Deployment, PreparationProgress, open_deployment
from .._errors import FaaslabError
from ._driver import ProgressCallback, RunClock, WorkloadDriver
from ._events import events_from_deployment, preload_events
from ._pools import SCALING, pool_series, write_pools
from ._readback import STATS_NAME, summarize_results
from ._records import RecordWriter
from ._results import (
    INVOCATIONS,
    RUN,
    SAMPLES,
    SUMMARY,
    DeploymentRunInfo,
    RunInfo,
    WorkloadRunInfo,
    prepare_results_dir,
    snapshot_spec,
    write_json,
)
from ._samples import write_samples
from ._spec import ExperimentDeployment, ExperimentSpec, Workload
from ._summary import ExperimentSummary, Status
from ._trace import Trace, load_trace

__all__ = ("ExperimentResult", "run_experiment")

log = structlog.get_logger()


class ExperimentResult(msgspec.Struct, frozen=True, kw_only=True):
    results_dir: str
    status: Status
    records: int
    errors: int
    #: Deployments that failed (could not start, or broke down), with why.
    failed_deployments: dict[str, str]
    summary: ExperimentSummary

    @property
    def ok(self) -> bool:
        """No failed call and no failed deployment."""
        return self.status == "complete" and not self.errors and not self.failed_deployments


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _faaslab_version() -> str:
    try:
        return version("faaslab")
    except PackageNotFoundError:
        return "unknown"


class _RunLog:
    """run.json as the run goes: rewritten (atomically) whenever something ends."""

    def __init__(
        self,
        spec: ExperimentSpec,
        results: Path,
        seed: int,
        clock: RunClock,
        code: dict[str, dict[str, str | None]],
    ) -> None:
        self.path = results / RUN
        self.info = RunInfo(
            experiment=spec.name,
            faaslab_version=_faaslab_version(),
            status="running",
            started_at=_now_iso(),
            epoch_unix=clock.epoch_unix,
            seed=seed,
            code=code,
            host={
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
        )
        self.save()

    def update(self, **changes: object) -> None:
        self.info = msgspec.structs.replace(self.info, **changes)
        self.save()

    def add_deployment(self, deployment: DeploymentRunInfo) -> None:
        self.update(deployments=[*self.info.deployments, deployment])

    def fail_deployment(self, name: str, error: str) -> None:
        self.update(
            deployments=[
                msgspec.structs.replace(d, error=error) if d.name == name else d
                for d in self.info.deployments
            ]
        )

    def add_workload_run(self, run: WorkloadRunInfo) -> None:
        self.update(workload_runs=[*self.info.workload_runs, run])

    def save(self) -> None:
        write_json(self.path, self.info)


class _Run:
    """One experiment run: what every deployment's task shares."""

    def __init__(
        self,
        spec: ExperimentSpec,
        results: Path,
        events: dict[str, list[dict[str, object]] | None],
        seed: int,
        clock: RunClock,
        run_log: _RunLog,
        progress: ProgressCallback | None,
        preparation: PreparationProgress | None,
        traces: dict[str, Trace],
    ) -> None:
        self.spec = spec
        self.results = results
        self.events = events
        self.traces = traces
        self.seed = seed
        self.clock = clock
        self.log = run_log
        self.progress = progress
        self.preparation = preparation
        self.writer = RecordWriter(results / INVOCATIONS)
        self.token = secrets.token_hex(3)

    async def deployment(self, index: int, plan: ExperimentDeployment) -> None:
        deployment_id = f"{self.token}-{index}-{plan.name}"[:63]
        spec = plan.deployment_spec(deployment_id, sebs_size=self.spec.sebs_size_of(plan))
        directory = self.results / plan.name
        directory.mkdir(exist_ok=True)
        memory_mb = {f.name: f.memory_mb for f in plan.functions}
        self.log.add_deployment(
            DeploymentRunInfo(
                name=plan.name, deployment_id=spec.deployment_id or "", memory_mb=memory_mb
            )
        )
        try:
            async with open_deployment(spec, progress=self.preparation) as dep:
                try:
                    for repetition in range(self.spec.repetitions):
                        for workload in self.spec.workloads_of(plan):
                            await self.workload(dep, plan.name, workload, repetition)
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._keep_memory(dep, directory, plan.name)
        except FaaslabError as exc:
            # One deployment failing (say, it cannot start at 64 MB) must not
            # cost the others their results: record it and go on.
            log.error("experiment.deployment_failed", deployment=plan.name, error=str(exc))
            self.log.fail_deployment(plan.name, str(exc))

    async def workload(
        self, dep: Deployment, name: str, workload: Workload, repetition: int
    ) -> None:
        events = self.events[workload.name] or events_from_deployment(dep, workload)
        driver = WorkloadDriver(
            dep,
            name,
            workload,
            repetition,
            events=events,
            sink=self.writer.write,
            clock=self.clock,
            # Seeded per workload run: the arrivals of one do not depend on
            # how many random numbers another drew.
            rng=random.Random(f"{self.seed}/{name}/{workload.name}/{repetition}"),
            progress=self.progress,
            trace=self.traces.get(workload.name),
            # Not per deployment: deployments compared on a trace get the same calls.
            trace_seed=random.Random(f"{self.seed}/{workload.name}/{repetition}").getrandbits(63),
        )
        try:
            await driver.run()
        finally:
            self.log.add_workload_run(driver.info())

    async def _keep_memory(self, dep: Deployment, directory: Path, name: str) -> None:
        """Memory statistics and samples, while the deployment's profile still exists;
        the pools' counters as the stop began."""
        report = await dep.stop(directory / STATS_NAME)
        epoch_s = self.clock.epoch_ns / 1e9
        pools = [
            pool_series(dep.spec.function(name), stats, epoch_s=epoch_s)
            for name, stats in dep.scaling_statistics().items()
        ]
        await anyio.to_thread.run_sync(write_pools, directory / SCALING, pools)
        if report is None or not dep.profile_path.is_file():
            return
        await anyio.to_thread.run_sync(
            partial(
                write_samples,
                directory / SAMPLES,
                dep.profile_path,
                dep.memory_records(),
                deployment=name,
                epoch_ns=self.clock.epoch_ns,
            )
        )


def _load_traces(spec: ExperimentSpec) -> dict[str, Trace]:
    """Every trace workload's trace, read (streamed, mapped rows kept) and checked
    before anything starts."""
    return {
        w.name: load_trace(w.trace, w.trace_functions)
        for w in spec.workloads
        if w.loop == "trace" and w.trace is not None and w.trace_functions is not None
    }


def _interrupted(exc: BaseException) -> bool:
    cancelled = (anyio.get_cancelled_exc_class(), KeyboardInterrupt)
    if isinstance(exc, BaseExceptionGroup):
        return all(_interrupted(e) for e in exc.exceptions)
    return isinstance(exc, cancelled)


async def run_experiment(
    spec: ExperimentSpec,
    results_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    source: str | os.PathLike[str] | None = None,
    preparation: PreparationProgress | None = None,
) -> ExperimentResult:
    """Run ``spec``, writing everything to ``results_dir``; return the outcome.

    ``results_dir`` must be new or empty (``overwrite`` replaces an earlier
    run's results). ``progress`` is called after every invocation;
    ``preparation`` is told about each deployment's pip installs and uploads.
    ``source``, the file the spec was loaded from, is copied beside spec.json.
    Cancelled, it stops every deployment, writes summary.json from the records
    so far, and re-raises. Failed calls and failed deployments do not raise:
    they are counted in the result (see :attr:`ExperimentResult.ok`).
    """
    results = Path(results_dir)
    events = dict(preload_events(spec))
    traces = await anyio.to_thread.run_sync(_load_traces, spec)
    prepare_results_dir(results, overwrite=overwrite)
    code = await anyio.to_thread.run_sync(
        lambda: snapshot_spec(spec, results, Path(source) if source is not None else None)
    )
    seed = spec.seed if spec.seed is not None else secrets.randbits(32)
    clock = RunClock()
    run_log = _RunLog(spec, results, seed, clock, code)
    run = _Run(spec, results, events, seed, clock, run_log, progress, preparation, traces)
    status: Status = "failed"
    error: str | None = None
    log.info("experiment.started", experiment=spec.name, results=str(results))
    try:
        if spec.parallel_deployments:
            async with anyio.create_task_group() as tg:
                for index, plan in enumerate(spec.deployments):
                    tg.start_soon(run.deployment, index, plan)
        else:
            for index, plan in enumerate(spec.deployments):
                await run.deployment(index, plan)
        status = "complete"
    except BaseException as exc:
        status = "interrupted" if _interrupted(exc) else "failed"
        error = None if status == "interrupted" else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with anyio.CancelScope(shield=True):
            run.writer.close()
            run_log.update(
                status=status,
                finished_at=_now_iso(),
                records=run.writer.written,
                errors=run.writer.errors,
                error=error,
            )
            summary = await anyio.to_thread.run_sync(summarize_results, results)
            write_json(results / SUMMARY, summary)
            log.info(
                "experiment.finished",
                experiment=spec.name,
                status=status,
                records=run.writer.written,
                errors=run.writer.errors,
            )
    return ExperimentResult(
        results_dir=str(results),
        status=status,
        records=run.writer.written,
        errors=run.writer.errors,
        failed_deployments={
            d.name: d.error for d in run_log.info.deployments if d.error is not None
        },
        summary=summary,
    )
