"""SeBS's result shapes: ``ExecutionResult`` and ``ExperimentResult``, as SeBS writes them.

SeBS (spcl/serverless-benchmarks) writes its results with
``sebs.utils.serialize``: ``json.dumps(..., sort_keys=True, indent=2)`` of
each object's ``vars()``. So the JSON keys are the objects' attribute names,
and some of them start with an underscore. An analysis script written for
SeBS's files reads ours unchanged because the keys, nesting and units below
are SeBS's own (``sebs/faas/function.py``, ``sebs/experiments/result.py``)::

    ExperimentResult  {"config": {"experiments": {..}, "deployment": {..}},
                       "begin_time": <unix s, float>, "end_time": <unix s, float>,
                       "result_bucket": null,
                       "_invocations": {<function name>: {<request id>: ExecutionResult}},
                       "_metrics": {}}
    ExecutionResult   {"output": <the runtime's whole HTTP answer>,
                       "request_id": "..",
                       "times": {"client", "benchmark", "initialization": µs (int),
                                 "client_begin", "client_end": str(datetime), local time,
                                 "http_startup", "http_first_byte_return": s (float)},
                       "provider_times": {"execution", "initialization": µs (int)},
                       "stats": {"memory_used": MB (float) or null,
                                 "cold_start": bool, "failure": bool},
                       "billing": {"_memory": MB, "_billed_time": ms,
                                   "_gb_seconds": ms * MB (int)}}

Units and meanings, and what faaslab puts there (:func:`execution_result`):

- ``times.client``: the client's wall time around the HTTP call, µs, computed
  from ``client_begin``/``client_end``, which are ``str(datetime)`` of the
  local naive time (``2024-05-01 12:00:00.123456``; no fraction when it is 0).
- ``times.http_startup`` / ``times.http_first_byte_return``: pycurl's
  ``PRETRANSFER_TIME`` / ``STARTTRANSFER_TIME`` in seconds since the request
  began (connection ready to send / first response byte).
- ``times.benchmark``: the runtime's ``end - begin`` around the handler, µs,
  each rounded to the µs first as SeBS's ``datetime.fromtimestamp`` does.
- ``times.initialization``: SeBS never sets it (0); neither does faaslab.
- ``provider_times``: on AWS, the platform's ``Duration`` and
  ``Init Duration``. faaslab's runtime is the provider here: ``execution``
  is the runtime's own measure (the handler's begin→end, unless the caller
  passes a wider one), ``initialization`` the fresh container's
  start-to-ready time for a cold invocation (0 when warm). SeBS's own local
  platform leaves both at 0.
- ``stats.memory_used``: AWS's ``Max Memory Used`` in MB, where Lambda's MB
  is 2**20 bytes (the same MB as the configured memory). faaslab writes the
  invocation's real peak in the same unit: bytes / 2**20 (SeBS's local
  platform leaves it null). Not the 1e6-byte MB of ``memory_stats.json``.
- ``stats.cold_start``: the truth (SeBS's local platform always says false).
- ``billing``: SeBS's AWS semantics. ``_memory`` is the configured memory
  (MB), ``_billed_time`` the execution rounded up to the next millisecond
  (Lambda's "Billed Duration"), ``_gb_seconds`` their product
  ``billed ms * MB`` (despite its name, SeBS stores MB·ms, not GB·s).

Keys are written sorted with two-space indent, as SeBS writes them; there is
no trailing newline, as in SeBS's files.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from .._errors import SpecError
from .._function import Invocation

__all__ = (
    "EXPERIMENTS_FILE",
    "ExecutionBilling",
    "ExecutionResult",
    "ExecutionStats",
    "ExecutionTimes",
    "ExperimentResult",
    "ProviderTimes",
    "ResultConfig",
    "encode_sebs_json",
    "execution_result",
    "experiment_result",
    "failed_result",
    "from_invocation",
    "read_experiment_result",
    "read_sebs_json",
    "write_experiments_json",
    "write_sebs_json",
)

#: What ``benchmark invoke`` writes in its output directory.
EXPERIMENTS_FILE = "experiments.json"

#: Lambda's MB (the configured memory and ``Max Memory Used``).
_MB = 2**20
_MICROSECOND = timedelta(microseconds=1)


class ExecutionTimes(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``times``: µs, except the two ``http_*`` (s) and the two datetimes (str)."""

    client: int
    client_begin: str
    client_end: str
    benchmark: int
    # Required: omit_defaults below must drop only the two HTTP times.
    initialization: int
    # SeBS's library trigger has no HTTP times and writes no such keys; the
    # HTTP trigger (SeBS's local platform and faaslab) always has them.
    http_startup: float | None = None
    http_first_byte_return: float | None = None


class ProviderTimes(msgspec.Struct, frozen=True, kw_only=True):
    """``provider_times``: what the platform measured, µs."""

    execution: int = 0
    initialization: int = 0


class ExecutionStats(msgspec.Struct, frozen=True, kw_only=True):
    """``stats``: ``memory_used`` in MB (2**20 bytes), or None when unknown."""

    memory_used: float | None = None
    cold_start: bool = False
    failure: bool = False


class ExecutionBilling(msgspec.Struct, frozen=True, kw_only=True):
    """``billing``: SeBS keeps these behind properties, so its keys start with ``_``."""

    memory: int | None = msgspec.field(default=None, name="_memory")
    billed_time: int | None = msgspec.field(default=None, name="_billed_time")
    gb_seconds: int = msgspec.field(default=0, name="_gb_seconds")


class ExecutionResult(msgspec.Struct, frozen=True, kw_only=True):
    """One invocation, in SeBS's ``ExecutionResult`` shape."""

    #: The runtime's whole HTTP answer: ``begin``, ``end``, ``request_id``,
    #: ``is_cold`` and ``result: {"output": <handler return>}``.
    output: dict[str, Any]
    request_id: str
    times: ExecutionTimes
    provider_times: ProviderTimes = ProviderTimes()
    stats: ExecutionStats = ExecutionStats()
    billing: ExecutionBilling = ExecutionBilling()


class ResultConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``config``: SeBS's echo of the experiment and deployment configuration.

    Kept as plain JSON objects: SeBS's readers look into them by key, and
    each platform writes its own ``deployment``. ``_config.result_config``
    builds the local one.
    """

    experiments: dict[str, Any]
    deployment: dict[str, Any]


class ExperimentResult(msgspec.Struct, frozen=True, kw_only=True):
    """``experiments.json``: SeBS's ``sebs.experiments.result.Result``."""

    config: ResultConfig
    #: ``datetime.now().timestamp()`` at the start and end: unix seconds.
    begin_time: float
    end_time: float
    result_bucket: str | None = None
    invocations: dict[str, dict[str, ExecutionResult]] = msgspec.field(
        default_factory=dict, name="_invocations"
    )
    metrics: dict[str, Any] = msgspec.field(default_factory=dict, name="_metrics")


# -- building -----------------------------------------------------------------


def _local_datetime(unix_s: float) -> datetime:
    # SeBS takes datetime.now(): the local naive time.
    return datetime.fromtimestamp(unix_s)


def _runtime_us(stamp: str) -> datetime:
    # As SeBS: float() of the runtime's "s.us" string, then fromtimestamp
    # (which rounds to the µs). UTC so that a DST switch does not shift one end.
    return datetime.fromtimestamp(float(stamp), tz=UTC)


def _stamp_text(stamp: str | float) -> str:
    # The runtime sends strings ("1715000000.123456"); keep them as they came.
    return stamp if isinstance(stamp, str) else f"{stamp:.6f}"


def execution_result(
    *,
    request_id: str,
    client_begin: float,
    client_end: float,
    http_startup_s: float,
    http_first_byte_s: float,
    runtime_begin: str | float | None,
    runtime_end: str | float | None,
    is_cold: bool,
    output: Any,
    memory_peak_bytes: int | None,
    memory_mb: int | None,
    failure: bool = False,
    init_us: int = 0,
    provider_execution_us: int | None = None,
    answer_extras: Mapping[str, Any] | None = None,
) -> ExecutionResult:
    """The ExecutionResult of one faaslab invocation.

    ``client_begin``/``client_end``: the client's wall clock (``time.time()``)
    just before sending and after reading the whole answer.
    ``http_startup_s``/``http_first_byte_s``: seconds from ``client_begin`` to
    the connection being ready to send, and to the answer's first byte.
    ``runtime_begin``/``runtime_end``: the runtime's unix times around the
    handler (its ``"s.us"`` strings or floats); None when no runtime answered
    (then ``benchmark`` is 0 and nothing is billed). ``output``: the
    handler's return value (or, for a failed call, what is known of the
    error). ``memory_peak_bytes``: the invocation's peak, None when not
    measured. ``memory_mb``: the function's configured memory.
    ``init_us``: a cold invocation's container start-to-ready time.
    ``provider_execution_us``: a platform-side execution time wider than the
    handler's, when the caller has one; defaults to ``times.benchmark``.
    ``answer_extras``: the rest of the runtime's answer (faaslab's
    ``compute_time_us``, ``instance``, ``error``), kept in ``output`` as SeBS
    keeps the whole answer there.
    """
    begin, end = _local_datetime(client_begin), _local_datetime(client_end)
    answered = runtime_begin is not None and runtime_end is not None
    benchmark_us = 0
    answer: dict[str, Any] = dict(answer_extras or {})
    answer.update(request_id=request_id, is_cold=is_cold, result={"output": output})
    if runtime_begin is not None and runtime_end is not None:
        # From the very text written in `output`, as SeBS computes it from the answer.
        answer["begin"], answer["end"] = _stamp_text(runtime_begin), _stamp_text(runtime_end)
        benchmark_us = (_runtime_us(answer["end"]) - _runtime_us(answer["begin"])) // _MICROSECOND
    execution_us = provider_execution_us if provider_execution_us is not None else benchmark_us
    billed_ms = math.ceil(execution_us / 1000) if answered else None
    return ExecutionResult(
        output=answer,
        request_id=request_id,
        times=ExecutionTimes(
            client=(end - begin) // _MICROSECOND,
            client_begin=str(begin),
            client_end=str(end),
            benchmark=benchmark_us,
            initialization=0,
            http_startup=http_startup_s,
            http_first_byte_return=http_first_byte_s,
        ),
        provider_times=ProviderTimes(
            execution=execution_us if answered else 0,
            initialization=init_us if is_cold else 0,
        ),
        stats=ExecutionStats(
            memory_used=memory_peak_bytes / _MB if memory_peak_bytes is not None else None,
            cold_start=is_cold,
            failure=failure,
        ),
        billing=ExecutionBilling(
            memory=memory_mb,
            billed_time=billed_ms,
            gb_seconds=billed_ms * memory_mb if billed_ms is not None and memory_mb else 0,
        ),
    )


def from_invocation(
    invocation: Invocation, *, memory_mb: int | None, init_us: int = 0
) -> ExecutionResult:
    """The ExecutionResult of a faaslab :class:`Invocation` (one that got an answer).

    ``memory_mb``: the function's configured memory (billing); ``init_us``:
    the instance's create-to-ready time, counted only when the call was cold.
    A handler error is a ``failure`` whose ``output`` keeps the runtime's
    ``error`` beside the (empty) result, as the answer carried it.
    """
    extras: dict[str, Any] = {
        "compute_time_us": invocation.compute_time_us,
        "instance": invocation.instance,
    }
    if invocation.error is not None:
        extras["error"] = msgspec.to_builtins(invocation.error)
    answered = invocation.begin > 0 and invocation.end > 0
    return execution_result(
        request_id=invocation.request_id,
        client_begin=invocation.client_send,
        client_end=invocation.client_receive,
        http_startup_s=invocation.http_connect_s or 0.0,
        http_first_byte_s=invocation.http_first_byte_s or 0.0,
        runtime_begin=invocation.begin if answered else None,
        runtime_end=invocation.end if answered else None,
        is_cold=invocation.is_cold,
        output=invocation.output,
        memory_peak_bytes=invocation.memory_peak_bytes,
        memory_mb=memory_mb,
        failure=invocation.error is not None,
        init_us=init_us,
        answer_extras=extras,
    )


def failed_result(
    error: BaseException | str, *, client_begin: float, client_end: float, memory_mb: int | None
) -> ExecutionResult:
    """The ExecutionResult of a call that got no answer (timeout, lost instance).

    As SeBS records a failed HTTP call: no request id (so its key becomes
    ``failed-<n>``), ``failure`` true; the reason is kept in ``output``.
    """
    return execution_result(
        request_id="",
        client_begin=client_begin,
        client_end=client_end,
        http_startup_s=0.0,
        http_first_byte_s=0.0,
        runtime_begin=None,
        runtime_end=None,
        is_cold=False,
        output=None,
        memory_peak_bytes=None,
        memory_mb=memory_mb,
        failure=True,
        answer_extras={"error": {"type": type(error).__name__, "message": str(error)}}
        if isinstance(error, BaseException)
        else {"error": {"type": "error", "message": error}},
    )


def experiment_result(
    *,
    config: ResultConfig,
    begin_time: float,
    end_time: float,
    invocations: Mapping[str, Iterable[ExecutionResult]],
    result_bucket: str | None = None,
) -> ExperimentResult:
    """An ExperimentResult of ``{function name: results in order}``.

    Keys as SeBS's ``add_invocation`` makes them: the request id, or
    ``failed-<n>`` (n = the function's results so far) when there is none.
    """
    by_function: dict[str, dict[str, ExecutionResult]] = {}
    for function, results in invocations.items():
        keyed = by_function.setdefault(function, {})
        for result in results:
            keyed[result.request_id or f"failed-{len(keyed)}"] = result
    return ExperimentResult(
        config=config,
        begin_time=begin_time,
        end_time=end_time,
        result_bucket=result_bucket,
        invocations=by_function,
    )


# -- files --------------------------------------------------------------------


def encode_sebs_json(value: msgspec.Struct) -> bytes:
    """JSON as SeBS writes it: keys sorted at every level, two-space indent."""
    return msgspec.json.format(msgspec.json.encode(value, order="sorted"), indent=2)


def write_sebs_json(path: Path | str, value: msgspec.Struct) -> Path:
    """Write ``value`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(encode_sebs_json(value))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


_T = TypeVar("_T", bound=msgspec.Struct)


def read_sebs_json(path: Path | str, kind: type[_T], what: str) -> _T:
    """Decode a SeBS result file; a file that is not one is a :class:`SpecError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise SpecError(f"{path}: not {what}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise SpecError(f"{path}: not JSON: {exc}") from exc


def write_experiments_json(output_dir: Path | str, result: ExperimentResult) -> Path:
    """``benchmark invoke``'s ``<output_dir>/experiments.json``; returns its path."""
    return write_sebs_json(Path(output_dir) / EXPERIMENTS_FILE, result)


def read_experiment_result(path: Path | str) -> ExperimentResult:
    """An ``experiments.json`` (faaslab's or SeBS's)."""
    return read_sebs_json(path, ExperimentResult, "a SeBS experiment result")
