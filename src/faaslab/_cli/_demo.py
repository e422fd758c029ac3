"""`faaslab demo`: the main job end to end, on this machine.

Checks the machine (doctor), deploys the bundled demo function as two
instances sampled every millisecond, invokes it with growing allocations,
prints each invocation's latency and memory, stops, and summarises the
memory statistics it wrote (SeBS's file and the typed report).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

import anyio

from .._deployment import Deployment, open_deployment
from .._spec import DeploymentSpec, FunctionSpec
from ._doctor import run_checks

__all__ = ("run_demo",)


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:7.1f} MB"


async def _storage_roundtrip(dep: Deployment) -> None:
    """Stage an input in the deployment's S3 store; the function reads it and writes back."""
    assert dep.storage is not None
    print(
        f"\n== storage: {dep.storage.kind} at {dep.storage.host_endpoint} "
        f"(functions use {dep.storage.function_address})"
    )
    data = hashlib.sha256(b"faaslab").digest() * 32768  # 1 MiB
    await dep.storage.create_bucket("demo")
    await dep.storage.upload_bytes("demo", "input.bin", data)
    inv = await dep.invoke("demo", {"bucket": "demo", "key": "input.bin"})
    same = inv.output["sha256"] == hashlib.sha256(data).hexdigest()
    print(
        f"  uploaded demo/input.bin (1 MiB); the function read it (sha256 "
        f"{'matches' if same else 'DIFFERS'}) and wrote {inv.output['written']}"
    )
    print(f"  bucket demo now holds: {', '.join(await dep.storage.list_objects('demo'))}")


async def run_demo(output_dir: Path) -> int:
    print("== doctor")
    failed = 0
    async for check in run_checks():
        failed += not check.ok
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<34} {check.detail}", flush=True)
    if failed:
        print("the machine is not ready: fix the FAIL lines above", file=sys.stderr)
        return 1

    # Copy the bundled function out of the package: the container mounts a directory.
    workdir = Path(tempfile.mkdtemp(prefix="faaslab-demo-"))
    workdir.chmod(0o755)
    code = workdir / "demo"
    code.mkdir(mode=0o755)
    source = resources.files("faaslab") / "demo" / "function.py"
    (code / "function.py").write_bytes(source.read_bytes())
    (code / "function.py").chmod(0o644)
    spec = DeploymentSpec(
        functions=[FunctionSpec(name="demo", code=str(code), instances=2, memory_mb=256)],
        measure_interval_ms=1,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    stats_path = output_dir / "memory_stats.json"
    try:
        print(
            "\n== deployment: 2 instances of the demo function, memory sampled every 1 ms, "
            "an S3 store (SeaweedFS)"
        )
        async with open_deployment(spec, state_path=output_dir / "out.json") as dep:
            for inst in dep.instances():
                print(f"  {inst.name}  http://{inst.sebs_url}/  ready in {inst.start_s:.2f} s")
            print(
                f"\n  {'call':>4} {'instance':<8} {'cold':<5} {'latency':>9} "
                f"{'compute':>9} {'memory before':>14} {'peak in call':>13}"
            )
            for i, allocate in enumerate((0, 0, 16, 16, 64, 64)):
                inv = await dep.invoke("demo", {"allocate_mb": allocate, "hold_s": 0.1})
                print(
                    f"  {i:>4} {inv.instance:<8} {inv.is_cold!s:<5} "
                    f"{inv.latency_s * 1e3:>6.1f} ms {inv.compute_time_us / 1e3:>6.1f} ms "
                    f"{_mb(inv.memory_before_bytes):>14} {_mb(inv.memory_peak_bytes):>13}"
                )
            if dep.storage is not None:
                await _storage_roundtrip(dep)
            report = await dep.stop(stats_path)
        print(f"\n== memory statistics: {stats_path} (SeBS's shape) and memory_report.json")
        assert report is not None
        print(f"  sampler priority: {report.sampler_priority}")
        for memory in report.instances:
            print(
                f"  {memory.function}-{memory.instance}: {memory.samples} samples, "
                f"{memory.precision_errors} late, mean {_mb(memory.mean_bytes)}, "
                f"max {_mb(memory.max_bytes)}, kernel peak {_mb(memory.kernel_peak_bytes)}"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def demo_main(output_dir: str) -> int:
    return anyio.run(run_demo, Path(output_dir))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add demo to faaslab's command parser."""
    demo = commands.add_parser("demo", help="doctor, a real deployment, invocations, memory stats")
    demo.add_argument(
        "-o",
        "--output",
        default="demo-results",
        metavar="DIR",
        help="where the deployment file and statistics go (default demo-results)",
    )
    demo.set_defaults(handler=lambda args: demo_main(args.output))
