"""PNG plots of an experiment's results; needs the optional extra ``faaslab[plot]``.

Nothing here imports matplotlib until a plot is asked for, so ``import
faaslab`` never needs it; without it :func:`write_plots` raises ImportError
and the CLI says how to get it. Figures are made with matplotlib's
object-oriented API (no pyplot, no global state, no GUI backend).

- ``latency_cdf.png`` — per function, the CDF of client latency, one line per
  deployment and phase (warm solid, cold dashed), and for cold-mode calls
  the whole time from creating the fresh container to its answer (dotted).
- ``memory_<deployment>.png`` — per instance, its sampled memory over time
  with its invocations shaded (the handler's begin to end).
- ``instances.png`` — when a pool scales: per deployment and function, the
  instances alive over time (from its ``scaling.json``), ``max_instances``
  dashed, and the calls that waited for a cold start marked below.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from ._pools import PoolSeries
from ._readback import pools_of, records_of, samples_of
from ._records import InvocationRecord
from ._results import PLOTS_DIR, RunInfo, read_run_info
from ._samples import InstanceSamples
from ._summary import is_cold

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ("PLOT_HINT", "plots_available", "write_plots")

PLOT_HINT = "pip install 'faaslab[plot]'"
#: Instances drawn per memory figure; the rest are named in the figure.
MAX_INSTANCES = 12
_COLUMNS = 3


def plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _colors() -> list[str]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return [palette(i) for i in range(10)]  # type: ignore[misc]


def write_plots(results_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the plots into ``RESULTS_DIR/plots``; return their paths."""
    import matplotlib  # noqa: F401  (ImportError here: the extra is missing)

    results = Path(results_dir)
    run = read_run_info(results)
    records = records_of(results)
    out = results / PLOTS_DIR
    out.mkdir(exist_ok=True)
    written = []
    path = _latency_cdf(records, run, out)
    if path is not None:
        written.append(path)
    for deployment in run.deployments:
        path = _memory_over_time(results, deployment.name, records, run, out)
        if path is not None:
            written.append(path)
    path = _instances_over_time(pools_of(results, run), records, run, out)
    if path is not None:
        written.append(path)
    return written


# -- latency CDF ---------------------------------------------------------------


def _cdf(ax: Axes, values: list[float], **style: object) -> None:
    ordered = sorted(v * 1000 for v in values)
    n = len(ordered)
    # From 0 at the smallest value, stepping up by 1/n at each value.
    fractions = [0.0] + [(i + 1) / n for i in range(n)]
    ax.step([ordered[0], *ordered], fractions, where="post", **style)  # type: ignore[arg-type]


def _log_milliseconds(ax: Axes) -> None:
    """A log axis labelled 10, 20, 50, 100, ... rather than in powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _latency_cdf(records: list[InvocationRecord], run: RunInfo, out: Path) -> Path | None:
    functions = sorted({r.function for r in records})
    if not functions:
        return None
    deployments = [d.name for d in run.deployments]
    colors = _colors()
    fig = _figure(8.5 * len(functions), 4.2)
    axes = fig.subplots(1, len(functions), squeeze=False)[0]
    for ax, function in zip(axes, functions, strict=True):
        latencies: dict[tuple[str, bool], list[float]] = defaultdict(list)
        to_answer: dict[str, list[float]] = defaultdict(list)
        for r in records:
            if r.function != function:
                continue
            if r.error is None and r.latency_s is not None:
                latencies[(r.deployment, is_cold(r))].append(r.latency_s)
            if r.error is None and r.start == "cold":
                to_answer[r.deployment].append(r.t_end - r.t_start)
        for i, deployment in enumerate(deployments):
            color = colors[i % len(colors)]
            for cold, style in ((False, "-"), (True, "--")):
                values = latencies.get((deployment, cold))
                if values:
                    phase = "cold, first call" if cold else "warm"
                    label = f"{deployment} {phase} (n={len(values)})"
                    _cdf(ax, values, color=color, linestyle=style, label=label)
            if to_answer.get(deployment):
                label = f"{deployment} cold, container create to answer"
                _cdf(ax, to_answer[deployment], color=color, linestyle=":", label=label)
        _log_milliseconds(ax)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("milliseconds (log scale)")
        ax.set_ylabel("fraction of calls")
        ax.set_title(f"{function}: client latency, cold vs warm")
        ax.grid(True, which="both", alpha=0.3)
        # Beside the axes: inside, it would hide the lines it explains.
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path = out / "latency_cdf.png"
    fig.savefig(path, dpi=110)
    return path


# -- memory over time ------------------------------------------------------------


def _spans(records: list[InvocationRecord], run: RunInfo) -> dict[str, list[tuple[float, float]]]:
    """Per container, its invocations as (start, end) on the run's clock."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in records:
        if r.container_id is None:
            continue
        if r.begin is not None and r.end is not None:
            # The handler's own span, moved from unix time to the run's clock.
            spans[r.container_id].append((r.begin - run.epoch_unix, r.end - run.epoch_unix))
        else:
            spans[r.container_id].append((r.t_start, r.t_end))
    return spans


def _memory_over_time(
    results: Path, deployment: str, records: list[InvocationRecord], run: RunInfo, out: Path
) -> Path | None:
    # In the order they lived: the pool first, then cold instances one by one.
    instances = sorted(samples_of(results, deployment), key=lambda s: s.t_s[0] if s.t_s else 0.0)
    if not instances:
        return None
    shown = instances[:MAX_INSTANCES]
    spans = _spans([r for r in records if r.deployment == deployment], run)
    columns = min(_COLUMNS, len(shown))
    rows = -(-len(shown) // columns)
    fig = _figure(4.6 * columns, 2.8 * rows + 0.6)
    axes = fig.subplots(rows, columns, squeeze=False).flatten()
    for ax, samples in zip(axes, shown, strict=False):
        _instance_panel(ax, samples, spans.get(samples.container_id, []))
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    limits = next((d.memory_mb for d in run.deployments if d.name == deployment), {})
    limit = ", ".join(f"{f} limit {mb} MiB" for f, mb in limits.items())
    title = f"{deployment}: memory over time per instance ({limit}); shaded: invocations"
    if len(instances) > len(shown):
        hidden = len(instances) - len(shown)
        title += f"\n{hidden} more instances in {deployment}/memory_samples.jsonl"
    fig.suptitle(title)
    fig.supxlabel("seconds since the run began")
    fig.supylabel("cgroup memory usage, MB (page cache included)")
    path = out / f"memory_{deployment}.png"
    fig.savefig(path, dpi=110)
    return path


def _instance_panel(ax: Axes, samples: InstanceSamples, spans: list[tuple[float, float]]) -> None:
    for start, end in spans:
        # An edge line keeps millisecond calls visible at a width of seconds.
        ax.axvspan(start, end, color="tab:orange", alpha=0.3, linewidth=0.6)
    ax.plot(samples.t_s, [b / 1e6 for b in samples.bytes], color="tab:blue", linewidth=1.0)
    ax.set_ylim(bottom=0)
    peak = max(samples.bytes) / 1e6
    thinned = f", max of {samples.bucket}" if samples.bucket > 1 else ""
    ax.set_title(
        f"{samples.instance}: {len(spans)} call{'' if len(spans) == 1 else 's'}, "
        f"peak {peak:.1f} MB{thinned}",
        fontsize="medium",
    )
    ax.grid(True, alpha=0.3)


# -- instances over time -----------------------------------------------------------


def _instances_over_time(
    pools: dict[tuple[str, str], PoolSeries],
    records: list[InvocationRecord],
    run: RunInfo,
    out: Path,
) -> Path | None:
    """One panel per deployment (rows) and function (columns), on one time axis."""
    from matplotlib.ticker import MaxNLocator

    # Fixed pools only: their instances are the deployment's, a flat line.
    if all(pool.policy == "fixed" for pool in pools.values()):
        return None
    functions = sorted({function for _, function in pools})
    deployments = [d.name for d in run.deployments if any(d.name == k[0] for k in pools)]
    colors = _colors()
    fig = _figure(8.5 * len(functions), 1.9 * len(deployments) + 1.0)
    axes = fig.subplots(len(deployments), len(functions), squeeze=False, sharex=True)
    end = max((r.t_end for r in records), default=0.0)
    for row, deployment in enumerate(deployments):
        color = colors[row % len(colors)]
        for column, function in enumerate(functions):
            ax = axes[row][column]
            pool = pools.get((deployment, function))
            if pool is None or not pool.alive_timeline:
                ax.set_visible(False)
                continue
            times = [t for t, _ in pool.alive_timeline]
            counts = [n for _, n in pool.alive_timeline]
            ax.step([*times, max(end, times[-1])], [*counts, counts[-1]], where="post", color=color)
            top = max(pool.max_instances or 0, pool.max_alive, 1)
            if pool.max_instances is not None:
                ax.axhline(pool.max_instances, color="grey", linestyle="--", linewidth=0.8)
            cold = [
                r.t_start
                for r in records
                if r.deployment == deployment and r.function == function and r.cold_start
            ]
            ax.plot(cold, [-0.25 * top] * len(cold), "|", color="tab:red", markersize=9)
            ax.set_ylim(-0.45 * top, top * 1.15)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(True, alpha=0.3)
            ax.set_title(
                f"{deployment} / {function} ({pool.policy}): at most {pool.max_alive}, "
                f"{pool.cold_calls} cold, idle {pool.idle_memory_mb_s:.0f} MB·s",
                fontsize="medium",
            )
    fig.suptitle("instances alive over time (red ticks: calls that waited for a cold start)")
    fig.supxlabel("seconds since the run began")
    fig.supylabel("instances")
    path = out / "instances.png"
    fig.savefig(path, dpi=110)
    return path
