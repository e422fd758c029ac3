"""The host sampler: one process for every deployment, access checks, deaths, idling.

Every test gets a host sampler of its own (a private socket, named by
``FAASLAB_SAMPLER_ADDRESS``), so that killing it touches nobody else's; the
sampler it started is stopped by its pid at the end. Containers are real,
labeled like a deployment's; their cgroup files are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from stalls import host_stalls_during

from faaslab._backend import Backend, Label
from faaslab._deployment._open import open_deployment
from faaslab._errors import SamplingError
from faaslab._sampling import (
    HostSampler,
    SampleBatch,
    SamplerAddress,
    SamplerStatus,
    SampleSubscription,
    find_memory_files,
    parse_address,
    sampler_status,
    token_digest,
)
from faaslab._spec import DeploymentSpec, FunctionSpec, StorageSpec
from leakcheck import stop_sampler_at

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

TOKEN = "test-token"
MB = 1024 * 1024
HOLD = """
HELD = []

def handler(event):
    block = bytearray(event.get("mb", 0) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    HELD.append(block)  # kept: the instance holds it while it is sampled
    return {"held": sum(len(b) for b in HELD)}
"""


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture
def address(monkeypatch: pytest.MonkeyPatch) -> Iterator[SamplerAddress]:
    """A host sampler address of this test's own; its sampler is stopped at the end."""
    directory = tempfile.mkdtemp(prefix="fl-hs-", dir="/tmp")  # short: 107-byte socket paths
    address = parse_address(f"unix://{directory}/sampler.sock")
    monkeypatch.setenv("FAASLAB_SAMPLER_ADDRESS", str(address))
    yield address
    stop_sampler_at(str(address), bound_s=10)  # a sampler this test started still runs
    for path in Path(directory).iterdir():
        path.unlink()
    os.rmdir(directory)


async def wait_exit(pid: int, timeout: float = 15) -> None:
    """Until process `pid` (not our child) has exited."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with anyio.fail_after(timeout):
            await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)


async def wait_status(
    address: SamplerAddress, condition: Callable[[SamplerStatus], bool], timeout: float = 30
) -> SamplerStatus:
    """Poll the sampler's status until `condition` holds (it pushes no events)."""
    with anyio.fail_after(timeout):
        while True:
            status = await sampler_status(address)
            if status is not None and condition(status):
                return status
            await anyio.sleep(0.05)


Container = tuple[str, str]  # (id, memory usage file)
MakeContainer = Callable[..., Awaitable[Container]]


@pytest.fixture
async def container(engine: Backend) -> AsyncIterator[MakeContainer]:
    """Factory of running containers labeled like a deployment's; all removed at the end."""
    made: list[str] = []

    async def make(
        deployment: str, *, token: str | None = TOKEN, labeled: bool = True
    ) -> Container:
        labels = {Label.DEPLOYMENT: deployment} if labeled else {}
        if labeled and token is not None:
            labels[Label.SAMPLER_TOKEN] = token_digest(token)
        labels.setdefault(Label.ROLE, "probe")
        config = {
            "Image": "faaslab/python:3.11",
            "Entrypoint": ["sleep", "300"],
            "Labels": labels,
            "HostConfig": {"NetworkMode": "none"},
        }
        container_id = await engine.create_container(
            config, name=f"faaslab-{deployment}-{len(made)}"
        )
        made.append(container_id)
        await engine.start_container(container_id)
        document = await engine.inspect_container(container_id)
        assert document is not None
        pid = document["State"]["Pid"]
        files = await anyio.to_thread.run_sync(
            lambda: find_memory_files(pid, container_id=container_id)
        )
        return container_id, files.usage

    yield make
    with anyio.CancelScope(shield=True):
        for container_id in made:
            await engine.remove_container(container_id)


async def samples_until(subscription: SampleSubscription, count: int) -> list[SampleBatch]:
    batches: list[SampleBatch] = []
    seen = 0
    async for batch in subscription:
        batches.append(batch)
        seen += len(batch.times)
        if seen >= count:
            break
    return batches


# -- one process, many deployments -----------------------------------------------------


def spec_of(
    deployment_id: str, code: Path, instances: int, interval_ms: float = 1
) -> DeploymentSpec:
    return DeploymentSpec(
        functions=[FunctionSpec(name="hold", code=str(code), instances=instances, memory_mb=256)],
        measure_interval_ms=interval_ms,
        deployment_id=deployment_id,
        storage=StorageSpec(kind="none"),
    )


@pytest.mark.usefixtures("address")
async def test_two_deployments_of_eight_share_one_sampler_at_1_ms_for_10_s(
    deployment_id: str,
    make_function: Callable[..., Path],
    leftovers_of: Callable[[str], Awaitable[list[str]]],
) -> None:
    code = make_function("hold", HOLD)
    ids = (f"{deployment_id}-a", f"{deployment_id}-b")
    status_json: dict[str, object] = {}
    windows: dict[str, dict[str, tuple[int, int, int]]] = {}
    reports = {}
    async with (
        open_deployment(spec_of(ids[0], code, 8)) as first,
        open_deployment(spec_of(ids[1], code, 8)) as second,
    ):
        deployments = (first, second)
        for dep in deployments:
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(dep.invoke, "hold", {"mb": 64})
        result = await anyio.run_process(
            [sys.executable, "-m", "faaslab", "sampler", "status", "--json"], check=True
        )
        status_json = json.loads(result.stdout)
        before = {
            dep.id: {r.container_id: r.snapshot for r in dep.memory_records()}
            for dep in deployments
        }
        # The probe runs for the measured window itself (not a synchronisation);
        # 0.2 s over 10 s because snapshots fall on batch boundaries (up to 50
        # ms apart).
        probe_deadlines, probe_late = await host_stalls_during(10.2)
        for dep in deployments:
            windows[dep.id] = {
                r.container_id: (
                    r.snapshot.count - before[dep.id][r.container_id].count,
                    r.snapshot.late - before[dep.id][r.container_id].late,
                    r.snapshot.skipped - before[dep.id][r.container_id].skipped,
                )
                for r in dep.memory_records()
            }
        for dep in deployments:
            reports[dep.id] = await dep.stop()
    assert status_json["deployments"] == 2
    assert status_json["files"] == 16
    assert isinstance(status_json["pid"], int)
    if os.geteuid() == 0:
        assert str(status_json["priority"]).startswith("SCHED_FIFO")
    print(f"a bare 1 ms loop: {probe_late} of {probe_deadlines} deadlines missed")
    assert probe_deadlines >= 10_000, (probe_deadlines, probe_late)
    for dep_id, window in windows.items():
        deadlines = sum(n + skipped for n, _, skipped in window.values())
        late = sum(late for _, late, _ in window.values())
        print(f"{dep_id}: {late} of {deadlines} deadlines missed ({100 * late / deadlines:.3f} %)")
        assert len(window) == 8
        # The 0.1 % target is the benchmark's (benchmarks/bench_sampling.py
        # --side-by-side, against two separate samplers in the same run). This
        # VM stalls now and then for 10-200 ms, and a stall makes all 16 files
        # miss deadlines at once, as it makes a bare loop miss them (``stalls``).
        # So here: every instance sampled nearly all of the 10 s or counted what
        # it skipped, and missed at most 1 % more than the bare loop run over
        # the same window. A broken sampler (wrong grid, no wake-up) fails
        # these; a stalled machine does not.
        for n, missed, skipped in window.values():
            assert n + skipped >= 9_900, window
            assert missed - probe_late < 0.01 * n, (window, probe_late)
        report = reports[dep_id]
        assert report is not None
        assert report.sampler_restarts == 0
        assert report.lost_deadlines == 0
        assert all(i.max_bytes is not None and i.max_bytes >= 64 * MB for i in report.instances)
    for dep_id in ids:
        assert await leftovers_of(dep_id) == []


async def test_different_intervals_share_the_process_each_on_its_own_grid(
    address: SamplerAddress, deployment_id: str, container: MakeContainer
) -> None:
    fast, slow = f"{deployment_id}-fast", f"{deployment_id}-slow"
    (fast_id, fast_file), (slow_id, slow_file) = await container(fast), await container(slow)
    async with anyio.create_task_group() as tg:
        one = await tg.start(HostSampler(fast, token=TOKEN).run)
        two = await tg.start(HostSampler(slow, token=TOKEN).run)
        assert one.pid == two.pid
        a = await one.register(fast_id, fast_file, 1.0)
        b = await two.register(slow_id, slow_file, 2.5)
        status = await wait_status(address, lambda s: s.files == 2)
        assert status.intervals_ns == (1_000_000, 2_500_000)
        assert status.deployments == 2
        with anyio.fail_after(20):
            fast_batches, slow_batches = await samples_until(a, 400), await samples_until(b, 200)
        tg.cancel_scope.cancel()
    for subscription, batches, interval in (
        (a, fast_batches, 1_000_000),
        (b, slow_batches, 2_500_000),
    ):
        assert subscription.t0_ns is not None
        deadlines = [
            t - late
            for batch in batches
            for t, late in zip(batch.times, batch.lateness, strict=True)
        ]
        assert all((d - subscription.t0_ns) % interval == 0 for d in deadlines)


async def test_two_clients_starting_at_once_get_one_sampler(
    address: SamplerAddress, deployment_id: str
) -> None:
    clients = [HostSampler(f"{deployment_id}-{i}") for i in range(4)]
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(tg.start, client.run)
        await wait_status(address, lambda s: s.deployments == 4)
        assert len({client.pid for client in clients}) == 1
        tg.cancel_scope.cancel()


# -- access control --------------------------------------------------------------------


@pytest.mark.usefixtures("address")
async def test_a_file_that_is_not_its_own_is_refused(
    deployment_id: str, container: MakeContainer
) -> None:
    mine, theirs = f"{deployment_id}-mine", f"{deployment_id}-theirs"
    my_id, my_file = await container(mine)
    their_id, their_file = await container(theirs)
    stranger_id, _ = await container(f"{deployment_id}-x", labeled=False)
    async with anyio.create_task_group() as tg:
        sampler = await tg.start(HostSampler(mine, token=TOKEN).run)
        with pytest.raises(SamplingError, match=f"belongs to deployment '{theirs}', not '{mine}'"):
            await sampler.register(their_id, their_file, 1.0)
        with pytest.raises(SamplingError, match="is not the memory file of this container"):
            await sampler.register(my_id, their_file, 1.0)
        with pytest.raises(SamplingError, match="is not faaslab's"):
            await sampler.register(stranger_id, "", 1.0)
        with pytest.raises(SamplingError, match="no container"):
            await sampler.register("0" * 64, my_file, 1.0)
        with pytest.raises(SamplingError, match="below the host sampler's floor"):
            await sampler.register(my_id, my_file, 0.01)
        wrong = await tg.start(HostSampler(mine, token="not-the-token").run)
        with pytest.raises(SamplingError, match="wrong sampler token"):
            await wrong.register(my_id, my_file, 1.0)
        # Refusals leave the sampler serving: its own file, found by the sampler itself.
        subscription = await sampler.register(my_id, "", 1.0)
        with anyio.fail_after(20):
            await samples_until(subscription, 100)
        assert subscription.path == os.path.realpath(my_file)  # the one the sampler found
        tg.cancel_scope.cancel()


async def test_over_tcp_every_registration_needs_the_token(
    address: SamplerAddress, deployment_id: str, container: MakeContainer
) -> None:
    server = await anyio.open_process(
        [sys.executable, "-m", "faaslab", "sampler", "serve", "--socket", address.path,
         "--tcp", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        status = await wait_status(address, lambda s: len(s.listening) == 2)
        tcp = parse_address(status.listening[1])
        assert tcp.kind == "tcp"
        assert tcp.host == "127.0.0.1"
        cid, usage = await container(deployment_id)
        untokened_id, untokened = await container(f"{deployment_id}-u", token=None)
        async with anyio.create_task_group() as tg:
            with pytest.raises(SamplingError, match="must present its deployment's sampler token"):
                await tg.start(HostSampler(deployment_id, address=tcp).run)
            sampler = await tg.start(HostSampler(deployment_id, token=TOKEN, address=tcp).run)
            subscription = await sampler.register(cid, usage, 1.0)
            with anyio.fail_after(20):
                await samples_until(subscription, 100)
            other = await tg.start(HostSampler(f"{deployment_id}-u", token="x", address=tcp).run)
            with pytest.raises(SamplingError, match="TCP clients need one"):
                await other.register(untokened_id, untokened, 1.0)
            tg.cancel_scope.cancel()
    finally:
        server.terminate()
        with anyio.fail_after(15):
            assert await server.wait() == 0


# -- deaths and idling -----------------------------------------------------------------

CLIENT = """
import sys, anyio
from faaslab._sampling import HostSampler

async def main():
    deployment, token, *pairs = sys.argv[1:]
    async with anyio.create_task_group() as tg:
        sampler = await tg.start(HostSampler(deployment, token=token).run)
        for container, path in zip(pairs[::2], pairs[1::2]):
            await sampler.register(container, path, 1.0)
        print("ready", flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


async def test_a_client_killed_mid_run_has_its_files_dropped(
    address: SamplerAddress, deployment_id: str, container: MakeContainer
) -> None:
    doomed, survivor = f"{deployment_id}-doomed", f"{deployment_id}-survivor"
    files = [await container(doomed) for _ in range(2)]
    survivor_id, survivor_file = await container(survivor)
    async with anyio.create_task_group() as tg:
        sampler = await tg.start(HostSampler(survivor, token=TOKEN).run)
        subscription = await sampler.register(survivor_id, survivor_file, 1.0)
        args = [a for pair in files for a in pair]
        async with await anyio.open_process(
            [sys.executable, "-c", textwrap.dedent(CLIENT), doomed, TOKEN, *args]
        ) as client:
            assert client.stdout is not None
            with anyio.fail_after(30):
                await BufferedByteReceiveStream(client.stdout).receive_until(b"ready\n", 1 << 20)
            status = await wait_status(address, lambda s: s.files == 3)
            assert status.deployments == 2
            client.kill()
            await client.wait()
        status = await wait_status(address, lambda s: s.files == 1)
        assert status.deployments == 1
        assert status.pid == sampler.pid
        # The other deployment was not disturbed.
        with anyio.fail_after(20):
            await samples_until(subscription, 200)
        assert subscription.end is None
        tg.cancel_scope.cancel()


async def test_the_sampler_killed_mid_run_is_restarted_and_lost_deadlines_reported(
    address: SamplerAddress, tmp_path: Path, deployment_id: str, make_function: Callable[..., Path]
) -> None:
    code = make_function("hold", HOLD)
    stats = tmp_path / "memory_stats.json"
    async with open_deployment(spec_of(deployment_id, code, 2)) as dep:
        await dep.invoke("hold", {"mb": 8})
        first = await wait_status(address, lambda s: s.files == 2)

        def counts() -> list[int]:
            return [r.snapshot.count for r in dep.memory_records()]

        async def sampled(since: list[int], count: int) -> None:
            """Until every instance has `count` more samples (no event tells)."""
            with anyio.fail_after(20):
                while min(c - k for c, k in zip(counts(), since, strict=True)) < count:  # noqa: ASYNC110
                    await anyio.sleep(0.05)

        await sampled([0, 0], 300)
        os.kill(first.pid, signal.SIGKILL)
        await wait_exit(first.pid)
        killed_at = counts()
        second = await wait_status(address, lambda s: s.pid != first.pid and s.files == 2)
        await sampled(killed_at, 300)  # sampling goes on under the new sampler
        report = await dep.stop(stats)
    assert second.deployments == 1
    assert report is not None
    assert report.sampler_restarts == 1
    assert report.lost_deadlines == sum(i.lost_deadlines for i in report.instances)
    for instance in report.instances:
        # A restart takes a process start and an engine check: many 1 ms deadlines.
        assert instance.lost_deadlines >= 10, instance
        assert instance.precision_errors >= instance.lost_deadlines
        assert instance.first_sample_ns is not None
        assert instance.last_sample_ns is not None
        # Every deadline from the first sample to the last is sampled, skipped,
        # or lost: nothing disappears silently. (Within 2 %: the samples' own
        # lateness and the flush boundaries blur the ends.)
        span = (instance.last_sample_ns - instance.first_sample_ns) // 1_000_000 + 1
        accounted = instance.samples + instance.skipped_deadlines + instance.lost_deadlines
        assert abs(accounted - span) <= 0.02 * span, (accounted, span, instance)
    sebs = json.loads(stats.read_text())
    assert sebs["precision_errors"] >= report.lost_deadlines


async def test_the_sampler_exits_when_idle_and_the_next_use_starts_another(
    address: SamplerAddress, deployment_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAASLAB_SAMPLER_IDLE_S", "0.5")
    async with anyio.create_task_group() as tg:
        client = await tg.start(HostSampler(deployment_id).run)
        pid = client.pid
        tg.cancel_scope.cancel()
    assert pid is not None
    await wait_exit(pid)
    assert not Path(address.path).exists()
    assert await sampler_status(address) is None
    async with anyio.create_task_group() as tg:
        again = await tg.start(HostSampler(deployment_id).run)
        assert again.pid not in (None, pid)
        tg.cancel_scope.cancel()
