"""SeBS's perf-cost experiment: its accounting, its result files and ``result.csv``.

What SeBS's ``sebs/experiments/perf_cost.py`` does, and so what faaslab does:

- for every memory size of ``memory-sizes`` (none: the benchmark's own), for
  every type of ``experiments``, batches of ``concurrent-invocations``
  parallel calls (``sequential``: batches of 1) until ``repetitions``
  results are accepted; ``cold`` and ``burst`` make every instance cold
  before each batch; ``sequential`` makes one extra call before the first
  batch. The first batch is a warm-up: its results are discarded (its
  failures are still counted, as SeBS counts them).
- Acceptance (:class:`PerfCostTally`): a ``cold`` run puts a warm result in
  ``incorrect``; a ``warm`` run drops a cold result without a word; ``burst``
  and ``sequential`` take everything. A failed call is a ``failures`` message.
- Each run writes ``perf-cost/<type>_results_<memory>.json`` (no
  ``_<memory>`` when ``memory-sizes`` is empty): an ExperimentResult plus
  ``statistics``. Its ``samples_generated`` is the number of results
  *accepted* (SeBS's name for it).
- ``process`` (:func:`process_perf_cost`) writes ``<stem>-processed.json``
  beside each result file (the same, minus every handler output; an
  existing one is used instead of its source), then ``perf-cost/result.csv``:
  one row per accepted invocation, with :data:`CSV_HEADER`. Values are
  formatted by Python's ``csv`` writer, as SeBS's are: ``True``/``False``,
  ints, float ``repr``, an empty field for null; rows end with ``\\r\\n``.
  SeBS takes the files in directory-listing order; faaslab sorts them by
  memory, then type (cold, warm, burst, sequential).
"""

from __future__ import annotations

import csv
import enum
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from .._errors import SpecError
from ._results import (
    ExecutionResult,
    ExperimentResult,
    ResultConfig,
    read_sebs_json,
    write_sebs_json,
)

__all__ = (
    "CSV_HEADER",
    "PERF_COST_DIR",
    "RESULT_CSV",
    "PerfCostResult",
    "PerfCostStatistics",
    "PerfCostTally",
    "RunType",
    "process_perf_cost",
    "read_perf_cost_result",
    "result_file_name",
    "write_perf_cost_result",
)

PERF_COST_DIR = "perf-cost"
RESULT_CSV = "result.csv"
#: ``result.csv``'s header, exactly SeBS's.
CSV_HEADER = (
    "memory",
    "type",
    "is_cold",
    "exec_time",
    "connection_time",
    "client_time",
    "provider_time",
    "mem_used",
)


class RunType(enum.StrEnum):
    """A perf-cost experiment type, as named in the config's ``experiments`` list."""

    COLD = "cold"
    WARM = "warm"
    BURST = "burst"
    SEQUENTIAL = "sequential"

    def batch_size(self, concurrent_invocations: int) -> int:
        """Calls per batch: ``sequential`` makes one at a time."""
        return 1 if self is RunType.SEQUENTIAL else concurrent_invocations

    @property
    def enforces_cold_start(self) -> bool:
        """Whether every instance is made cold before each batch."""
        return self in (RunType.COLD, RunType.BURST)

    @property
    def calls_before_first_batch(self) -> int:
        """Calls made (and ignored) before the first batch: SeBS warms ``sequential`` up once."""
        return 1 if self is RunType.SEQUENTIAL else 0


_ORDER = {run_type: index for index, run_type in enumerate(RunType)}
_FILE_NAME = re.compile(
    r"(?P<type>cold|warm|burst|sequential)_results(?:_(?P<memory>[0-9]+))?"
    r"(?P<processed>-processed)?\.json"
)


def result_file_name(run_type: RunType, memory_mb: int | None) -> str:
    """``<type>_results_<memory>.json``, or ``<type>_results.json`` without a memory size."""
    suffix = f"_{memory_mb}" if memory_mb is not None else ""
    return f"{run_type.value}_results{suffix}.json"


class PerfCostStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """``statistics`` of a perf-cost result file."""

    #: Results accepted (SeBS's name; not the number of calls made).
    samples_generated: int
    #: One message per failed call (SeBS: ``str()`` of the exception).
    failures: list[str]
    failures_count: int
    #: ``cold`` runs: the results that were not cold, whole.
    incorrect: list[ExecutionResult]
    incorrect_count: int
    #: Cold results among the accepted ones.
    cold_count: int


class PerfCostResult(ExperimentResult, frozen=True, kw_only=True):
    """A ``<type>_results_<memory>.json`` file: an ExperimentResult plus ``statistics``."""

    statistics: PerfCostStatistics


class PerfCostTally:
    """The accounting of one perf-cost run (one type, one memory size).

    Give it every batch's outcomes in order, each an ExecutionResult or, for
    a call that failed, its error message; the first batch is the warm-up.
    Run batches while :attr:`done` is false::

        tally = PerfCostTally(RunType.COLD, repetitions=50)
        while not tally.done:
            tally.add_batch(await run_batch())
        result = tally.result(config=..., function=..., begin_time=..., end_time=...)
    """

    def __init__(self, run_type: RunType, repetitions: int) -> None:
        if repetitions < 1:
            raise ValueError(f"repetitions must be positive, not {repetitions}")
        self.run_type = run_type
        self.repetitions = repetitions
        self.batches = 0
        self._accepted: list[ExecutionResult] = []
        self._failures: list[str] = []
        self._incorrect: list[ExecutionResult] = []

    @property
    def done(self) -> bool:
        return len(self._accepted) >= self.repetitions

    @property
    def accepted(self) -> tuple[ExecutionResult, ...]:
        return tuple(self._accepted)

    def add_batch(self, outcomes: Iterable[ExecutionResult | str]) -> None:
        warm_up = self.batches == 0
        self.batches += 1
        for outcome in outcomes:
            if isinstance(outcome, str):
                self._failures.append(outcome)
            elif outcome.stats.failure:
                self._failures.append(f"invocation {outcome.request_id or '?'} failed")
            elif warm_up:
                continue
            elif self.run_type is RunType.COLD and not outcome.stats.cold_start:
                self._incorrect.append(outcome)
            elif self.run_type is RunType.WARM and outcome.stats.cold_start:
                continue
            else:
                self._accepted.append(outcome)

    def statistics(self) -> PerfCostStatistics:
        return PerfCostStatistics(
            samples_generated=len(self._accepted),
            failures=list(self._failures),
            failures_count=len(self._failures),
            incorrect=list(self._incorrect),
            incorrect_count=len(self._incorrect),
            cold_count=sum(result.stats.cold_start for result in self._accepted),
        )

    def result(
        self,
        *,
        config: ResultConfig,
        function: str,
        begin_time: float,
        end_time: float,
        result_bucket: str | None = None,
    ) -> PerfCostResult:
        """The run's file content; ``function`` names the invocations' group."""
        invocations: dict[str, ExecutionResult] = {}
        for result in self._accepted:
            invocations[result.request_id or f"failed-{len(invocations)}"] = result
        return PerfCostResult(
            config=config,
            begin_time=begin_time,
            end_time=end_time,
            result_bucket=result_bucket,
            invocations={function: invocations} if invocations else {},
            statistics=self.statistics(),
        )


# -- files --------------------------------------------------------------------


def write_perf_cost_result(
    output_dir: Path | str, run_type: RunType, memory_mb: int | None, result: PerfCostResult
) -> Path:
    """Write ``<output_dir>/perf-cost/<type>_results_<memory>.json``; return its path."""
    path = Path(output_dir) / PERF_COST_DIR / result_file_name(run_type, memory_mb)
    return write_sebs_json(path, result)


def read_perf_cost_result(path: Path | str) -> PerfCostResult:
    return read_sebs_json(path, PerfCostResult, "a SeBS perf-cost result")


def _without_outputs(result: PerfCostResult) -> PerfCostResult:
    """What SeBS's process keeps of a run: everything but the handlers' outputs."""

    def strip(invocation: ExecutionResult) -> ExecutionResult:
        inner = invocation.output.get("result")
        if not isinstance(inner, dict):
            return invocation
        inner = dict(inner)
        if "output" in inner:
            del inner["output"]
        else:
            inner.pop("result", None)
        return msgspec.structs.replace(invocation, output={**invocation.output, "result": inner})

    invocations = {
        function: {key: strip(invocation) for key, invocation in results.items()}
        for function, results in result.invocations.items()
    }
    return msgspec.structs.replace(result, invocations=invocations)


def _processed_runs(directory: Path) -> list[tuple[int, RunType, PerfCostResult]]:
    """(memory, type, processed result) of every run in ``directory``, sorted."""
    sources: dict[tuple[RunType, int | None], Path] = {}
    processed: dict[tuple[RunType, int | None], Path] = {}
    for path in directory.iterdir():
        match = _FILE_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        memory = int(match["memory"]) if match["memory"] is not None else None
        key = (RunType(match["type"]), memory)
        (processed if match["processed"] else sources)[key] = path
    runs = []
    for key in sources.keys() | processed.keys():
        if key in processed:
            result = read_perf_cost_result(processed[key])
        else:
            source = sources[key]
            result = _without_outputs(read_perf_cost_result(source))
            write_sebs_json(source.with_name(f"{source.stem}-processed.json"), result)
        run_type, memory = key
        runs.append((memory or 0, run_type, result))
    runs.sort(key=lambda run: (run[0], _ORDER[run[1]]))
    return runs


def _rows(memory: int, run_type: RunType, result: PerfCostResult) -> Iterable[list[Any]]:
    for invocations in result.invocations.values():
        for invocation in invocations.values():
            yield [
                memory,
                run_type.value,
                invocation.stats.cold_start,
                invocation.times.benchmark,
                invocation.times.http_startup,
                invocation.times.client,
                invocation.provider_times.execution,
                invocation.stats.memory_used,
            ]


def process_perf_cost(output_dir: Path | str) -> Path:
    """``experiment process perf-cost``: write ``<output_dir>/perf-cost/result.csv``.

    Also writes the ``-processed.json`` twins SeBS writes. Returns the CSV's
    path. No perf-cost results in ``output_dir`` is a :class:`SpecError`.
    """
    directory = Path(output_dir) / PERF_COST_DIR
    if not directory.is_dir():
        raise SpecError(
            f"{output_dir}: no {PERF_COST_DIR}/ directory; run `experiment invoke perf-cost` "
            "with this --output-dir first"
        )
    runs = _processed_runs(directory)
    if not runs:
        raise SpecError(
            f"{directory}: no <type>_results_<memory>.json files; run `experiment invoke "
            "perf-cost` with this --output-dir first"
        )
    target = directory / RESULT_CSV
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{RESULT_CSV}.")
    try:
        # newline="": the csv writer's own "\r\n" reaches the file unchanged,
        # as it does in SeBS's file on Linux.
        with os.fdopen(fd, "w", newline="") as file:
            writer = csv.writer(file, delimiter=",")
            writer.writerow(CSV_HEADER)
            for memory, run_type, result in runs:
                writer.writerows(_rows(memory, run_type, result))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
