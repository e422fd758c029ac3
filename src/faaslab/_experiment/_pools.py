"""Each deployment's pools as a run keeps them: ``<deployment>/scaling.json``.

Written when the deployment stops, from its pools' counters (the
:class:`~faaslab._deployment.PoolStatistics` of each function, exact from
the pool's own events) with the instance counts over time moved to the
run's clock, so ``report`` recomputes the summary's scaling figures and
plots the instances beside the records.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import msgspec

from .._deployment import PoolStatistics
from .._errors import SpecError
from .._spec import FunctionSpec

__all__ = ("SCALING", "PoolSeries", "pool_series", "read_pools", "write_pools")

SCALING = "scaling.json"


class PoolSeries(msgspec.Struct, frozen=True, kw_only=True):
    """One function's pool over a deployment's life (until its stop began)."""

    function: str
    policy: str
    memory_mb: int
    #: The bound a scaling policy keeps to (None for ``fixed``).
    max_instances: int | None
    #: Instances started (restarts included), and those a call waited for.
    starts: int
    cold_starts: int
    #: Calls that waited for an instance to start.
    cold_calls: int
    stops: int
    max_alive: int
    #: Instance-seconds spent starting, serving, and alive without serving.
    starting_instance_s: float
    busy_instance_s: float
    idle_instance_s: float
    #: Memory limit x idle instance-seconds (ATC'20's wasted memory-time).
    idle_memory_mb_s: float
    #: (seconds since the run began, instances alive from then on), per change.
    alive_timeline: list[tuple[float, int]]


def pool_series(spec: FunctionSpec, stats: PoolStatistics, *, epoch_s: float) -> PoolSeries:
    """A pool's counters with its timeline on the run's clock (``epoch_s``: its 0)."""
    return PoolSeries(
        function=spec.name,
        policy=spec.scaling.policy,
        memory_mb=spec.memory_mb,
        max_instances=spec.scaling.max_instances,
        starts=stats.starts,
        cold_starts=stats.cold_starts,
        cold_calls=stats.cold_calls,
        stops=stats.stops,
        max_alive=stats.max_alive,
        starting_instance_s=stats.starting_instance_s,
        busy_instance_s=stats.busy_instance_s,
        idle_instance_s=stats.idle_instance_s,
        idle_memory_mb_s=stats.idle_memory_mb_s(spec.memory_mb),
        alive_timeline=[(round(t - epoch_s, 6), n) for t, n in stats.alive_timeline],
    )


def write_pools(path: Path, pools: list[PoolSeries]) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(pools), indent=2) + b"\n")


def read_pools(path: Path) -> Mapping[str, PoolSeries]:
    """A deployment's pools by function; empty when it wrote none."""
    if not path.is_file():
        return {}
    try:
        pools = msgspec.json.decode(path.read_bytes(), type=list[PoolSeries])
    except (msgspec.DecodeError, OSError) as exc:
        raise SpecError(f"{path}: unreadable: {exc}") from exc
    return {pool.function: pool for pool in pools}
