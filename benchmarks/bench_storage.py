"""Storage throughput: concurrent directory upload vs one-by-one, and download_stream in a function.

    python benchmarks/bench_storage.py [--files 200] [--total-mb 100] [--repeat 3]
                                       [--concurrency 8] [--object-mb 1 10 50]

1. Upload of ``--files`` files totalling ``--total-mb`` MB (MB = 1e6 bytes)
   from the host into SeaweedFS: ``Storage.upload_directory`` (bounded
   concurrency) against the same files uploaded one after another with
   ``Storage.upload_file``, alternating which goes first; medians and the
   ratio, measured in this run.
2. ``download_stream`` of one object of each ``--object-mb`` size from inside
   a function container on the deployment network (timed inside the handler),
   against the host's own ``download_bytes`` of the same object.

The storage and the function run as faaslab starts them (``open_storage``,
``open_instance``); nothing is timed during start or teardown.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import anyio
import msgspec

sys.path.insert(0, str(Path(__file__).parent))

from _common import function_dir, median, quiet_logs
from faaslab._backend import Backend, Label, open_engine
from faaslab._function._actor import InstanceContext, open_instance
from faaslab._runtime import RUNTIME_IMAGE
from faaslab._spec import FunctionSpec, StorageSpec
from faaslab._storage import Storage, open_storage

MB = 1_000_000

DOWNLOADER = """
import time
from . import storage

def handler(event):
    client = storage.storage.get_instance()
    client.download_stream(event["bucket"], event["key"])  # warm: connection, caches
    seconds = []
    for _ in range(event["repeat"]):
        started = time.perf_counter()
        data = client.download_stream(event["bucket"], event["key"])
        seconds.append(time.perf_counter() - started)
        del data
    return {"seconds": seconds}
"""


def make_files(root: Path, count: int, total_bytes: int) -> list[Path]:
    size = total_bytes // count
    paths = []
    for i in range(count):
        path = root / f"d{i % 10}" / f"file-{i:04}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


async def upload_concurrently(storage: Storage, root: Path, prefix: str, limit: int) -> float:
    started = time.perf_counter()
    await storage.upload_directory("bench", prefix, root, concurrency=limit)
    return time.perf_counter() - started


async def upload_one_by_one(storage: Storage, root: Path, paths: list[Path], prefix: str) -> float:
    started = time.perf_counter()
    for path in paths:
        await storage.upload_file("bench", f"{prefix}/{path.relative_to(root).as_posix()}", path)
    return time.perf_counter() - started


async def uploads(storage: Storage, args: argparse.Namespace) -> None:
    total = int(args.total_mb * MB)
    with tempfile.TemporaryDirectory(prefix="faaslab-bench-") as tmp:
        root = Path(tmp)
        paths = make_files(root, args.files, total)
        megabytes = sum(p.stat().st_size for p in paths) / MB
        concurrent: list[float] = []
        sequential: list[float] = []
        for run in range(args.repeat):
            order = [True, False] if run % 2 == 0 else [False, True]
            for first_concurrent in order:
                if first_concurrent:
                    seconds = await upload_concurrently(storage, root, f"c{run}", args.concurrency)
                    concurrent.append(seconds)
                else:
                    sequential.append(await upload_one_by_one(storage, root, paths, f"s{run}"))
    c, s = median(concurrent), median(sequential)
    print(f"\nupload of {args.files} files, {megabytes:.0f} MB, host -> SeaweedFS "
          f"(median of {args.repeat})")  # fmt: skip
    print(f"  {'one by one (upload_file)':<34} {s:7.2f} s  {megabytes / s:7.1f} MB/s")
    print(
        f"  {f'upload_directory (concurrency {args.concurrency})':<34} {c:7.2f} s  "
        f"{megabytes / c:7.1f} MB/s"
    )
    print(f"  throughput ratio concurrent / one by one: {s / c:.2f}x")


async def downloads(
    engine: Backend, storage: Storage, deployment_id: str, network: str, args: argparse.Namespace
) -> None:
    code = function_dir(DOWNLOADER, "downloader")
    largest = max(args.object_mb)
    spec = FunctionSpec(name="downloader", code=str(code), memory_mb=int(largest * 3) + 256)
    context = InstanceContext(
        deployment_id=deployment_id, network=network, image=RUNTIME_IMAGE,
        start_timeout_s=30, stop_grace_s=1, remove=True, env=storage.function_env(),
    )  # fmt: skip
    print(f"\ndownload_stream inside a function vs the host's download_bytes (median of "
          f"{args.repeat})")  # fmt: skip
    print(f"  {'object':>8}  {'function':>14}  {'host':>14}  function / host")
    async with (
        aiohttp.ClientSession() as session,
        open_instance(engine, spec, 0, context, session) as instance,
    ):
        for size_mb in args.object_mb:
            key = f"objects/{size_mb}mb.bin"
            await storage.upload_bytes("bench", key, os.urandom(int(size_mb * MB)))
            event = {"bucket": "bench", "key": key, "repeat": args.repeat}
            result = await instance.invoke(msgspec.json.encode(event), timeout=300)
            if result.error is not None:
                raise SystemExit(f"the function failed: {result.error.message}")
            inside = median(result.output["seconds"])
            await storage.download_bytes("bench", key)  # warm
            host = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                await storage.download_bytes("bench", key)
                host.append(time.perf_counter() - started)
            outside = median(host)
            print(
                f"  {size_mb:>6g}MB  {size_mb / inside:9.1f} MB/s  {size_mb / outside:9.1f} MB/s"
                f"  {outside / inside:.2f}x"
            )


async def main(args: argparse.Namespace) -> None:
    quiet_logs()
    deployment_id = f"bench-{secrets.token_hex(3)}"
    network = f"faaslab-{deployment_id}"
    async with open_engine() as engine:
        network_id = await engine.create_network(network, {Label.DEPLOYMENT: deployment_id})
        try:
            async with open_storage(
                engine, StorageSpec(), deployment_id=deployment_id, network=network
            ) as storage:
                assert storage is not None
                await storage.create_bucket("bench")
                await storage.upload_bytes("bench", "warm", b"x")  # the bucket's first volume
                await uploads(storage, args)
                await downloads(engine, storage, deployment_id, network, args)
        finally:
            await engine.remove_network(network_id)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--total-mb", type=float, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--object-mb", type=float, nargs="+", default=[1, 10, 50])
    anyio.run(main, parser.parse_args())
