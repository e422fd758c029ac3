"""Stopping with a big memory profile: faaslab's finalisation vs SeBS's.

    python benchmarks/bench_profile_stop.py [--samples 10000000] [--containers 8]
        [--no-verify] [--keep DIR]

Both sides start from what a run leaves behind for the same samples:

- faaslab: the binary profile file (appended batch by batch during the run)
  and the aggregates (updated batch by batch during the run; their snapshots
  are loaded here). Stopping = streaming SeBS's memory_stats.json from the
  profile file + writing memory_report.json.
- SeBS: its measurement text file, one ``<container id> <bytes>`` line per
  sample plus ``precision not met`` lines; stopping = its shutdown code
  (rewritten here after sebs/local/local.py): read every line into a dict of
  lists, ``statistics.mean`` and ``max`` per container, ``json.dump(indent=6)``.

Each stop runs in a fresh process so that its peak RSS (ru_maxrss) is its
own. Target: >= 10x faster, and flat memory (faaslab's peak independent of
the number of samples). With --verify (default) both outputs are parsed and
compared: same containers, same profiles, same counts, same figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from faaslab._aggregate import (
    MemoryAggregate,
    MemoryAggregateSnapshot,
    MemoryReport,
    ProfileReader,
    ProfileWriter,
    instance_memory,
    write_memory_report,
    write_sebs_memory_stats,
)

BATCH = 256  # samples per batch, as the sampling process sends them


def container_ids(count: int) -> list[str]:
    return [f"{i:02x}" * 32 for i in range(count)]


def prepare(directory: Path, samples: int, containers: int) -> float:
    """Write both runs' leftovers; returns the seconds our side spent on it
    during the "run" (profile appends + aggregate updates), for the record."""
    ids = container_ids(containers)
    aggregates = {cid: MemoryAggregate() for cid in ids}
    per_container = samples // containers
    running_cost = 0.0
    with (
        ProfileWriter(directory / "profile.bin") as profile,
        open(directory / "sebs_measurements.txt", "w") as text,
    ):
        for start in range(0, per_container, BATCH):
            n = min(BATCH, per_container - start)
            times = list(range(start * 1_000_000, (start + n) * 1_000_000, 1_000_000))
            for index, cid in enumerate(ids):
                # A plausible profile: ~60-330 MB, page-aligned, wandering.
                values = [
                    (60_000_000 + ((start + i) * 7919 + index * 104_729) % 270_000_000)
                    // 4096
                    * 4096
                    for i in range(n)
                ]
                late = int((start // BATCH) % 4 == index % 4)  # some batches missed a deadline
                began = time.perf_counter()
                profile.append(cid, times, values)
                aggregates[cid].update(values, times=times, lateness=[50_000] * n, late=late)
                running_cost += time.perf_counter() - began
                lines = [f"{cid} {value}\n" for value in values]
                if late:
                    lines.append("precision not met\n")
                text.writelines(lines)
    snapshots = [aggregates[cid].snapshot() for cid in ids]
    (directory / "snapshots.msgpack").write_bytes(msgspec.msgpack.encode(snapshots))
    return running_cost


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stop_faaslab(directory: Path) -> None:
    ids = container_ids(int((directory / "containers").read_text()))
    snapshots = msgspec.msgpack.decode(
        (directory / "snapshots.msgpack").read_bytes(), type=list[MemoryAggregateSnapshot]
    )
    precision_errors = sum(s.late for s in snapshots)
    reader = ProfileReader(directory / "profile.bin")
    write_sebs_memory_stats(
        directory / "faaslab_memory_stats.json",
        list(zip(ids, snapshots, strict=True)),
        reader,
        precision_errors,
    )
    report = MemoryReport(
        deployment="bench",
        sampler_priority="SCHED_FIFO 20",
        instances=tuple(
            instance_memory(s, function="f", instance=i, container_id=cid, interval_ms=1.0)
            for i, (cid, s) in enumerate(zip(ids, snapshots, strict=True))
        ),
    )
    write_memory_report(directory / "memory_report.json", report)


def stop_sebs(directory: Path) -> None:
    """SeBS's shutdown, as in sebs/local/local.py (rewritten, same steps)."""
    from statistics import mean

    measurements: dict[str, list[int]] = {}
    precision_errors = 0
    with open(directory / "sebs_measurements.txt") as file:
        for line in file:
            if line == "precision not met\n":
                precision_errors += 1
            line_content = line.split()
            if len(line_content) == 0:
                continue
            if line_content[0] not in measurements:
                try:
                    measurements[line_content[0]] = [int(line_content[1])]
                except ValueError:
                    continue
            else:
                try:
                    measurements[line_content[0]].append(int(line_content[1]))
                except ValueError:
                    continue
    stats: dict[str, object] = {}
    for container, values in measurements.items():
        stats[container] = {
            "mean mem. usage": f"{mean(values) / 1e6} MB",
            "max mem. usage": f"{max(values) / 1e6} MB",
            "number of measurements": len(values),
            "full profile (in bytes)": values,
        }
    with open(directory / "sebs_memory_stats.json", "w") as out:
        if precision_errors > 0:
            stats["precision_errors"] = precision_errors
        json.dump(stats, out, indent=6)


def run_phase(phase: str, directory: Path) -> dict[str, float]:
    """Run one stop in a fresh process; its wall time and memory."""
    result = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--keep", str(directory)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def child(phase: str, directory: Path) -> None:
    before = rss_mb()
    began = time.perf_counter()
    (stop_faaslab if phase == "faaslab" else stop_sebs)(directory)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "growth_mb": peak - before}))


def verify(directory: Path) -> None:
    with open(directory / "faaslab_memory_stats.json") as file:
        ours = json.load(file)
    with open(directory / "sebs_memory_stats.json") as file:
        theirs = json.load(file)
    assert list(ours) == list(theirs), "different keys"
    assert ours["precision_errors"] == theirs["precision_errors"]
    for cid, entry in theirs.items():
        if cid == "precision_errors":
            continue
        mine = ours[cid]
        assert mine["full profile (in bytes)"] == entry["full profile (in bytes)"], cid
        assert mine["number of measurements"] == entry["number of measurements"]
        for key in ("mean mem. usage", "max mem. usage"):
            a, b = (float(x[key].removesuffix(" MB")) for x in (mine, entry))
            assert abs(a - b) <= 1e-6, (key, a, b)
    print("verified: same containers, profiles, counts, means, maxima, precision errors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--containers", type=int, default=8)
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--keep", help="work in this directory and keep the files")
    parser.add_argument("--phase", choices=["faaslab", "sebs"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args.phase, Path(args.keep))
        return
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(args.keep or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "containers").write_text(str(args.containers))
        print(f"preparing {args.samples:,} samples over {args.containers} containers ...")
        running = prepare(directory, args.samples, args.containers)
        print(
            f"  during the run, faaslab spent {running:.2f} s appending the profile and updating"
            f" aggregates ({running / args.samples * 1e9:.0f} ns per sample, spread over the run)"
        )
        for name in ("profile.bin", "sebs_measurements.txt"):
            print(f"  {name}: {(directory / name).stat().st_size / 1e6:.0f} MB")
        ours = run_phase("faaslab", directory)
        theirs = run_phase("sebs", directory)
        for name in ("faaslab_memory_stats.json", "sebs_memory_stats.json"):
            print(f"  {name}: {(directory / name).stat().st_size / 1e6:.0f} MB")
        print(f"\nstop with {args.samples:,} samples      seconds   peak RSS MB   RSS growth MB")
        for label, figures in (
            ("faaslab (stream from profile)", ours),
            ("SeBS (parse text)", theirs),
        ):
            print(
                f"  {label:<30} {figures['seconds']:8.2f}   {figures['peak_rss_mb']:10.0f}"
                f"   {figures['growth_mb']:12.0f}"
            )
        speedup = theirs["seconds"] / ours["seconds"]
        memory = theirs["growth_mb"] / max(ours["growth_mb"], 1.0)
        print(f"ratios: {speedup:.1f}x faster (target >= 10x), {memory:.0f}x less memory growth")
        if not args.no_verify:
            verify(directory)


if __name__ == "__main__":
    main()
