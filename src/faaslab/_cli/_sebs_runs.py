"""SeBS's runs against a real deployment: ``benchmark invoke`` and perf-cost.

Both open a deployment in this process (``open_deployment``), call the
benchmark with its generated input (``inputs[0]``, as SeBS does) and turn
every call into SeBS's ExecutionResult (``_sebs.from_invocation``). The file
formats and the perf-cost accounting are ``_sebs``'s; what is here is the
calling:

- ``benchmark invoke``: N calls one after the other, on the deployment's
  instance (the first is cold, the rest warm — the truth, where SeBS's
  local platform says ``false`` throughout).
- perf-cost, per memory size (one deployment each, its memory limit
  enforced by the engine): ``cold`` and ``burst`` run every batch of
  ``concurrent-invocations`` parallel calls on as many *fresh* instances
  (``Deployment.open_cold_instance``), all started before the batch is
  fired; ``warm`` runs its batches on the deployment's own
  ``concurrent-invocations`` instances, which its discarded first batch
  warms; ``sequential`` makes one call, then batches of one. SeBS sleeps
  5 s between batches to let a cloud settle; nothing needs settling here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog

from .._aggregate import MemoryReport
from .._deployment import Deployment, PreparationProgress, open_deployment
from .._errors import FaaslabError
from .._function import Instance, Invocation
from .._sebs import (
    PERF_COST_DIR,
    ExecutionResult,
    PerfCostSettings,
    PerfCostTally,
    ResultConfig,
    RunType,
    Verdict,
    experiment_result,
    failed_result,
    from_invocation,
    validate,
    write_experiments_json,
    write_perf_cost_result,
)
from .._spec import DeploymentSpec

__all__ = (
    "BenchmarkRun",
    "PerfCostStep",
    "batches_needed",
    "invoke_benchmark",
    "run_perf_cost",
)

log = structlog.get_logger()

#: A perf-cost run whose calls keep being rejected (a cold run that gets warm
#: answers) gives up after this many times the batches it should need.
MAX_BATCH_FACTOR = 4


class BenchmarkRun(msgspec.Struct, frozen=True, kw_only=True):
    """What ``benchmark invoke`` did."""

    experiments_path: str
    stats_path: str | None
    results: list[ExecutionResult]
    verdicts: list[Verdict] = []


class PerfCostStep(msgspec.Struct, frozen=True, kw_only=True):
    """Where one perf-cost run stands, after each batch (for progress)."""

    memory_mb: int | None
    run_type: RunType
    batches: int
    accepted: int
    repetitions: int
    failures: int
    #: Batches it should take when every result counts (warm-up included).
    expected_batches: int


ProgressCallback = Callable[[PerfCostStep], None]


def batches_needed(run_type: RunType, repetitions: int, concurrent_invocations: int) -> int:
    """Batches a run takes when every result is accepted: the warm-up, then enough for N."""
    return 1 + math.ceil(repetitions / run_type.batch_size(concurrent_invocations))


# -- one call -----------------------------------------------------------------


def _start_us(dep: Deployment, invocation: Invocation) -> int:
    for instance in dep.instances(invocation.function):
        if instance.name == invocation.instance:
            return round(instance.start_s * 1e6)
    return 0


async def _call(
    dep: Deployment,
    function: str,
    event: Mapping[str, Any],
    memory_mb: int | None,
    instance: Instance | None = None,
) -> tuple[ExecutionResult, Invocation | None, str | None]:
    """One call as SeBS records it; a call that got no answer is a failed result."""
    begin = time.time()
    try:
        if instance is None:
            invocation = await dep.invoke(function, event, check=False)
        else:
            invocation = await dep.invoke_on(instance, event, check=False)
    except FaaslabError as exc:
        log.warning("sebs.invocation_failed", function=function, error=str(exc))
        end = time.time()
        failed = failed_result(exc, client_begin=begin, client_end=end, memory_mb=memory_mb)
        return failed, None, str(exc)
    start_us = round(instance.start_s * 1e6) if instance is not None else _start_us(dep, invocation)
    result = from_invocation(invocation, memory_mb=memory_mb, init_us=start_us)
    error = None
    if invocation.error is not None:
        error = f"{invocation.error.type}: {invocation.error.message}"
    return result, invocation, error


def _first_input(dep: Deployment, function: str) -> dict[str, Any]:
    for event, owner in zip(dep.inputs, dep.input_functions, strict=False):
        if owner == function:
            return dict(event)
    return {}


# -- benchmark invoke ---------------------------------------------------------


async def invoke_benchmark(
    spec: DeploymentSpec,
    *,
    config: ResultConfig,
    repetitions: int,
    output_dir: Path,
    check_outputs: bool = False,
    progress: Callable[[int], None] | None = None,
    preparation: PreparationProgress | None = None,
) -> BenchmarkRun:
    """Deploy, invoke ``repetitions`` times, write ``experiments.json``, stop.

    The memory statistics (SeBS's ``memory_stats.json`` and faaslab's typed
    report) go beside ``experiments.json`` when sampling is on.
    """
    function = spec.functions[0]
    results: list[ExecutionResult] = []
    verdicts: list[Verdict] = []
    stats_path = output_dir / "memory_stats.json" if spec.sampling else None
    async with open_deployment(spec, progress=preparation) as dep:
        event = _first_input(dep, function.name)
        begin = time.time()
        for done in range(repetitions):
            result, invocation, _ = await _call(dep, function.name, event, function.memory_mb)
            results.append(result)
            if check_outputs:
                verdicts.append(await _verdict(dep, function.name, event, invocation))
            if progress is not None:
                progress(done + 1)
        end = time.time()
        await dep.stop(stats_path)
    experiments = experiment_result(
        config=config, begin_time=begin, end_time=end, invocations={function.name: results}
    )
    path = write_experiments_json(output_dir, experiments)
    return BenchmarkRun(
        experiments_path=str(path),
        stats_path=str(stats_path) if stats_path is not None else None,
        results=results,
        verdicts=verdicts,
    )


async def _verdict(
    dep: Deployment, function: str, event: Mapping[str, Any], invocation: Invocation | None
) -> Verdict:
    benchmark = dep.benchmarks.get(function)
    if benchmark is None:
        return Verdict("unavailable", "not a SeBS benchmark")
    if invocation is None or invocation.error is not None:
        return Verdict("error", "the call failed")
    return await validate(benchmark, dict(event), invocation.output, dep.storage)


# -- perf-cost ----------------------------------------------------------------


async def _warm_batch(
    dep: Deployment, function: str, event: Mapping[str, Any], size: int, memory: int | None
) -> list[ExecutionResult | str]:
    """``size`` parallel calls routed to the deployment's own instances."""
    outcomes: list[ExecutionResult | str] = []

    async def one() -> None:
        result, _, error = await _call(dep, function, event, memory)
        outcomes.append(error if error is not None else result)

    async with anyio.create_task_group() as tg:
        for _ in range(size):
            tg.start_soon(one)
    return outcomes


async def _cold_batch(
    dep: Deployment, function: str, event: Mapping[str, Any], size: int, memory: int | None
) -> list[ExecutionResult | str]:
    """``size`` fresh instances, all ready before any is called, then one parallel call each."""
    outcomes: list[ExecutionResult | str] = []
    ready = 0
    all_ready = anyio.Event()

    def arrived() -> None:
        nonlocal ready
        ready += 1
        if ready == size:
            all_ready.set()

    async def one() -> None:
        counted = False
        try:
            async with dep.open_cold_instance(function) as instance:
                counted = True
                arrived()
                await all_ready.wait()
                result, _, error = await _call(dep, function, event, memory, instance)
                outcomes.append(error if error is not None else result)
        except FaaslabError as exc:
            if not counted:
                arrived()
            log.warning("sebs.cold_instance_failed", function=function, error=str(exc))
            outcomes.append(f"fresh instance: {exc}")

    async with anyio.create_task_group() as tg:
        for _ in range(size):
            tg.start_soon(one)
    return outcomes


async def _perf_cost_run(
    dep: Deployment,
    settings: PerfCostSettings,
    run_type: RunType,
    memory_mb: int | None,
    config: ResultConfig,
    output_dir: Path,
    progress: ProgressCallback | None,
) -> Path:
    function = dep.spec.functions[0]
    event = _first_input(dep, function.name)
    memory = memory_mb if memory_mb is not None else function.memory_mb
    size = run_type.batch_size(settings.concurrent_invocations)
    expected = batches_needed(run_type, settings.repetitions, settings.concurrent_invocations)
    batch = _cold_batch if run_type.enforces_cold_start else _warm_batch
    tally = PerfCostTally(run_type, settings.repetitions)
    begin = time.time()
    for _ in range(run_type.calls_before_first_batch):
        await _call(dep, function.name, event, memory)
    while not tally.done:
        if tally.batches >= expected * MAX_BATCH_FACTOR:
            log.warning(
                "sebs.perf_cost_gave_up",
                run_type=run_type.value,
                memory_mb=memory_mb,
                batches=tally.batches,
                accepted=len(tally.accepted),
                repetitions=settings.repetitions,
            )
            break
        tally.add_batch(await batch(dep, function.name, event, size, memory))
        if progress is not None:
            statistics = tally.statistics()
            progress(
                PerfCostStep(
                    memory_mb=memory_mb,
                    run_type=run_type,
                    batches=tally.batches,
                    accepted=statistics.samples_generated,
                    repetitions=settings.repetitions,
                    failures=statistics.failures_count,
                    expected_batches=expected,
                )
            )
    result = tally.result(
        config=config, function=function.name, begin_time=begin, end_time=time.time()
    )
    return write_perf_cost_result(output_dir, run_type, memory_mb, result)


async def run_perf_cost(
    settings: PerfCostSettings,
    specs: Mapping[int | None, DeploymentSpec],
    *,
    config: ResultConfig,
    output_dir: Path,
    progress: ProgressCallback | None = None,
    preparation: PreparationProgress | None = None,
) -> list[Path]:
    """Every type of ``settings`` at every memory size, one deployment per size.

    ``specs`` maps each memory size (None: the benchmark's own, when
    ``memory-sizes`` is empty) to its deployment. Returns the result files
    written; each deployment's memory statistics go beside them
    (``perf-cost/memory_stats_<memory>.json``).
    """
    written: list[Path] = []
    for memory_mb, spec in specs.items():
        suffix = f"_{memory_mb}" if memory_mb is not None else ""
        stats = output_dir / PERF_COST_DIR / f"memory_stats{suffix}.json"
        stats.parent.mkdir(parents=True, exist_ok=True)
        report: MemoryReport | None = None
        async with open_deployment(spec, progress=preparation) as dep:
            for run_type in settings.experiments:
                written.append(
                    await _perf_cost_run(
                        dep, settings, run_type, memory_mb, config, output_dir, progress
                    )
                )
            report = await dep.stop(stats if spec.sampling else None)
        log.info("sebs.perf_cost_memory_done", memory_mb=memory_mb, sampled=report is not None)
    return written
