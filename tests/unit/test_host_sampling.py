"""The host sampler's pure parts: deadline grids, access decisions, frames,
addresses, lost-deadline accounting in the client (a fake transport)."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from faaslab._aggregate import MemoryAggregate, build_report
from faaslab._aggregate._record import MeasurementRecord
from faaslab._backend import Label
from faaslab._cli._sampler import status_json
from faaslab._deployment._recovery import sampler_released
from faaslab._errors import SamplingError, SpecError
from faaslab._function import InstanceContext, container_config
from faaslab._sampling import SampleBatch, SamplingEnd, parse_address, token_digest
from faaslab._sampling._access import AccessRequest, check_container, check_path
from faaslab._sampling._grid import catch_up, first_deadline, lost_deadlines
from faaslab._sampling._protocol import (
    Attach,
    Batch,
    DaemonReady,
    Denied,
    FrameReader,
    Hello,
    HostCommand,
    Refused,
    Register,
    Registered,
    Status,
    StatusQuery,
    decode_command,
    decode_event,
    decode_ready,
    encode_frame,
    pack_int64,
)
from faaslab._sampling._pump import SamplingClient
from faaslab._spec import FunctionSpec
from faaslab._state import SamplingRecord

MS = 1_000_000

# -- grids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "grid"),
    [(MS, MS), (MS // 2, MS // 2), (2_500_000, MS // 2), (3 * MS, MS), (333_333, 1)],
)
def test_a_new_grid_starts_on_the_next_aligned_instant(interval: int, grid: int) -> None:
    for now in (0, 1, 12_345_678_901, 10 * MS):
        t0 = first_deadline(now, interval)
        assert t0 > now
        assert t0 % grid == 0
        assert t0 - now <= grid


def test_grids_of_intervals_dividing_1_ms_wake_together() -> None:
    now = 7_654_321
    # Every 1 ms deadline is also a 0.5 ms one, and a 2 ms grid's first
    # deadline is a 1 ms one: the two groups share those wake-ups.
    assert first_deadline(now, MS) % (MS // 2) == 0
    assert first_deadline(now, 2 * MS) % MS == 0
    with pytest.raises(ValueError, match="positive"):
        first_deadline(now, 0)


def test_catch_up_skips_to_the_next_future_deadline_and_counts() -> None:
    assert catch_up(10 * MS, 10 * MS + MS // 2, MS) == (10 * MS, 0)  # on time
    assert catch_up(10 * MS, 11 * MS, MS) == (10 * MS, 0)  # one interval late: still served
    following, missed = catch_up(10 * MS, 13 * MS + 1, MS)
    assert (following, missed) == (14 * MS, 4)
    assert following > 13 * MS + 1


def test_lost_deadlines_are_those_before_the_new_grid_that_never_arrived() -> None:
    # 100 deadlines accounted from t0 = 0, the new registration starts at 250 ms.
    assert lost_deadlines(0, 100, 250 * MS, MS) == 150
    # Everything arrived up to the new start: nothing lost.
    assert lost_deadlines(0, 250, 250 * MS, MS) == 0
    assert lost_deadlines(0, 300, 250 * MS, MS) == 0  # never negative
    assert lost_deadlines(5 * MS, 0, 5 * MS, MS) == 0  # same instant
    assert lost_deadlines(5 * MS, 0, 3 * MS, MS) == 0  # a new grid before the old one
    # Off-grid restarts round up: deadlines at 0, 2.5, 5, 7.5 ms precede 8 ms.
    assert lost_deadlines(0, 1, 8 * MS, 2_500_000) == 3
    with pytest.raises(ValueError, match="positive"):
        lost_deadlines(0, 0, 1, 0)


# -- access decisions ------------------------------------------------------------------------

REQUEST = AccessRequest(
    request=1,
    deployment="dep-a",
    container="c" * 64,
    path="/sys/fs/cgroup/memory/docker/" + "c" * 64 + "/memory.usage_in_bytes",
    token="secret",
    engine="unix:///var/run/docker.sock",
    require_token=False,
)


def document(
    labels: dict[str, str] | None, *, running: bool = True, pid: int = 42
) -> dict[str, Any]:
    return {
        "Config": {"Labels": labels},
        "State": {"Running": running, "Pid": pid if running else 0},
    }


OWN = {"faaslab.deployment": "dep-a", "faaslab.sampler-token": token_digest("secret")}


@pytest.mark.parametrize(
    ("request_", "doc", "error"),
    [
        (REQUEST, document(OWN), ""),
        (REQUEST, None, "no container cccccccccccc"),
        (REQUEST, document(None), "is not faaslab's"),
        (
            REQUEST,
            document({"faaslab.deployment": "dep-b"}),
            "belongs to deployment 'dep-b', not 'dep-a'",
        ),
        (
            REQUEST,
            document({**OWN, "faaslab.sampler-token": token_digest("other")}),
            "wrong sampler token",
        ),
        # A unix client of a container without a token label (same user): allowed.
        (REQUEST, document({"faaslab.deployment": "dep-a"}), ""),
        (
            msgspec.structs.replace(REQUEST, require_token=True),
            document({"faaslab.deployment": "dep-a"}),
            "TCP clients need one",
        ),
        (msgspec.structs.replace(REQUEST, require_token=True), document(OWN), ""),
        (REQUEST, document(OWN, running=False), "is not running"),
        (msgspec.structs.replace(REQUEST, container=""), document(OWN), "no container named"),
    ],
)
def test_container_decisions(
    request_: AccessRequest, doc: dict[str, Any] | None, error: str
) -> None:
    found, pid = check_container(request_, doc)
    if error:
        assert error in found
        assert pid == 0
    else:
        assert found == ""
        assert pid == 42


def test_a_sandboxed_function_container_passes_the_checks(tmp_path: Path) -> None:
    """The labels and sandbox a function container gets (the owner and state
    labels, uid 10001, a health check still starting) are what the checker
    sees: it decides on the deployment and token labels alone."""
    (tmp_path / "function.py").write_text("def handler(event):\n    return {}\n")
    function = FunctionSpec(name="fn", code=str(tmp_path))
    labels = {
        Label.DEPLOYMENT: "dep-a",
        Label.OWNER: "4242:123456",
        Label.STATE: "/srv/out.json",
        Label.SAMPLER_TOKEN: token_digest("secret"),
    }
    context = InstanceContext(
        deployment_id="dep-a",
        network="faaslab-dep-a",
        image="faaslab/python:3.11",
        start_timeout_s=30.0,
        stop_grace_s=2.0,
        remove=True,
        labels=labels,
    )
    body = container_config(function, "fn-0", context, 0)
    inspected = {
        "Config": {"Labels": body["Labels"], "User": body["User"]},
        "State": {"Running": True, "Pid": 42, "Health": {"Status": "starting"}},
    }
    assert check_container(REQUEST, inspected) == ("", 42)
    tcp = msgspec.structs.replace(REQUEST, require_token=True)
    assert check_container(tcp, inspected) == ("", 42)
    stranger = msgspec.structs.replace(REQUEST, token="not-it")
    assert "wrong sampler token" in check_container(stranger, inspected)[0]


def test_path_decisions() -> None:
    usage = "/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes"
    assert check_path(usage, usage) == ""
    assert check_path("/sys/fs/cgroup/memory/docker//abc/./memory.usage_in_bytes", usage) == ""
    assert check_path("", usage) == ""  # none named: the sampler samples the one it found
    assert "is not the memory file of this container" in check_path("/etc/shadow", usage)
    assert "not the memory file" in check_path(usage.replace("abc", "def"), usage)


def test_the_token_label_is_a_digest_not_the_token() -> None:
    assert token_digest("secret") != "secret"
    assert len(token_digest("secret")) == 64
    assert token_digest("secret") == token_digest("secret")


# -- frames ------------------------------------------------------------------------------------


def test_socket_frames_roundtrip() -> None:
    commands: list[HostCommand] = [
        Attach(protocol=1, deployment="d", token="t", engine="unix:///x", client="me"),
        Register(key="k", path="", interval_ns=MS, container="c" * 64),
        StatusQuery(),
    ]
    reader = FrameReader()
    bodies = reader.feed(b"".join(encode_frame(c) for c in commands))
    assert [decode_command(b) for b in bodies] == commands
    events = [
        Denied(error="no"),
        Registered(key="k", t0_ns=5, path="/p"),
        Status(pid=1, priority="normal", deployments=2, files=16, intervals_ns=(MS,)),
    ]
    bodies = reader.feed(b"".join(encode_frame(e) for e in events))
    assert [decode_event(b) for b in bodies] == events


def test_frames_of_the_first_protocol_still_decode() -> None:
    """Fields added later have defaults: a Register without `container`, a
    Registered without `path`, decode (schema evolution)."""

    class OldRegister(msgspec.Struct, tag="register"):
        key: str
        path: str
        interval_ns: int

    class OldRegistered(msgspec.Struct, tag="registered"):
        key: str
        t0_ns: int

    (body,) = FrameReader().feed(encode_frame(OldRegister("k", "/p", MS)))
    assert decode_command(body) == Register(key="k", path="/p", interval_ns=MS, container="")
    (body,) = FrameReader().feed(encode_frame(OldRegistered("k", 7)))
    assert decode_event(body) == Registered(key="k", t0_ns=7, path="")


def test_ready_line() -> None:
    line = msgspec.json.encode(DaemonReady(ok=True, pid=12, tcp_port=7600))
    assert decode_ready(line) == DaemonReady(ok=True, pid=12, error="", tcp_port=7600)


# -- addresses -----------------------------------------------------------------------------------


def test_addresses() -> None:
    unix = parse_address("unix:///run/x/sampler.sock")
    assert (unix.kind, unix.path, str(unix)) == (
        "unix",
        "/run/x/sampler.sock",
        "unix:///run/x/sampler.sock",
    )
    assert str(unix.beside(".pid")) == "/run/x/sampler.pid"
    tcp = parse_address("tcp://sampler:7600")
    assert (tcp.kind, tcp.host, tcp.port, str(tcp)) == (
        "tcp",
        "sampler",
        7600,
        "tcp://sampler:7600",
    )
    with pytest.raises(ValueError, match="no files beside"):
        tcp.beside(".pid")
    for bad, why in [
        ("unix://relative.sock", "absolute"),
        ("unix:///" + "x" * 120, "at most 107 bytes"),
        ("tcp://nohost", "tcp://host:port"),
        ("tcp://host:99999", "tcp://host:port"),
        ("http://x", "expected unix"),
    ]:
        with pytest.raises(SpecError, match=why):
            parse_address(bad)


def test_status_json_has_exactly_the_documented_keys() -> None:
    status = Status(
        pid=9,
        priority="SCHED_FIFO 20",
        deployments=2,
        files=16,
        connections=2,
        attached={"a": 8, "b": 8},
    )
    assert status_json(status) == {
        "pid": 9,
        "priority": "SCHED_FIFO 20",
        "deployments": 2,
        "files": 16,
        "attached": {"a": 8, "b": 8},
    }
    assert status_json(None) == {
        "pid": None,
        "priority": None,
        "deployments": 0,
        "files": 0,
        "attached": {},
    }


# -- lost deadlines in the client ---------------------------------------------------------------


class FakeTransport(SamplingClient):
    """A client whose sampling process is this test: commands are recorded."""

    def __init__(self) -> None:
        super().__init__(buffer_batches=16, register_timeout=5)
        self.sent: list[HostCommand] = []
        self._started = True
        self._hello = Hello(pid=1, priority="normal")

    async def _send_command(self, command: HostCommand) -> None:
        self.sent.append(command)


def batch(key: str, times: list[int]) -> Batch:
    return Batch(
        key=key,
        times=pack_int64(array("q", times)),
        values=pack_int64(array("q", [1] * len(times))),
        lateness=pack_int64(array("q", [0] * len(times))),
        late=0,
    )


@pytest.mark.anyio
async def test_a_key_registered_again_after_a_restart_gets_its_lost_deadlines() -> None:
    client = FakeTransport()
    aggregate = MemoryAggregate()
    async with anyio.create_task_group() as tg:

        async def register() -> None:
            subscription = await client.register("k", "/p", 1.0, container="c")
            async for received in subscription:
                aggregate.add(received)

        tg.start_soon(register)
        with anyio.fail_after(5):
            while not client.sent:
                await anyio.lowlevel.checkpoint()
        assert client.sent == [Register(key="k", path="/p", interval_ns=MS, container="c")]
        await client._dispatch(Registered(key="k", t0_ns=100 * MS, path="/p"), blocking=True)
        await client._dispatch(batch("k", [100 * MS, 101 * MS, 102 * MS]), blocking=True)
        client._interrupted()  # the sampler died after 3 deadlines
        await client._dispatch(Registered(key="k", t0_ns=110 * MS, path="/p"), blocking=True)
        await client._dispatch(batch("k", [110 * MS]), blocking=True)
        client._finish_all("test over")
    assert aggregate.count == 4
    assert aggregate.lost == 7  # deadlines 103 ... 109 ms
    assert aggregate.late == 7
    assert aggregate.snapshot().lost == 7
    assert MemoryAggregate.from_snapshot(aggregate.snapshot()).lost == 7
    (key,) = client.statistics().keys
    assert key.lost == 7


@pytest.mark.anyio
async def test_a_refusal_after_a_restart_ends_the_key_and_says_why() -> None:
    client = FakeTransport()
    async with anyio.create_task_group() as tg:
        subscribed = anyio.Event()
        results: list[object] = []

        async def register() -> None:
            subscription = await client.register("k", "/p", 1.0)
            subscribed.set()
            results.extend([b async for b in subscription])
            results.append(subscription.end)

        tg.start_soon(register)
        with anyio.fail_after(5):
            while not client.sent:
                await anyio.lowlevel.checkpoint()
        await client._dispatch(Registered(key="k", t0_ns=0, path="/p"), blocking=True)
        await subscribed.wait()
        client._interrupted()
        await client._dispatch(Refused(key="k", error="container gone"), blocking=True)
    end = results[-1]
    assert isinstance(end, SamplingEnd)
    assert end.reason == "not sampled again after the sampler restarted: container gone"
    # Ended, so the key may be registered again (here nobody answers).
    client._register_timeout = 0.01
    with pytest.raises(SamplingError, match="no answer"):
        await client.register("k", "/p", 1.0)


def test_reports_carry_restarts_and_lost_deadlines() -> None:
    aggregate = MemoryAggregate()
    aggregate.add(
        SampleBatch(
            key="k",
            times=array("q"),
            values=array("q"),
            lateness=array("q"),
            late=5,
            skipped=0,
            lost=5,
        )
    )
    aggregate.update([100, 200], times=[1, 2], lateness=[0, 0])
    record = MeasurementRecord(
        function="f", instance="f-0", index=0, container_id="c", source="cgroup",
        interval_ms=1.0, snapshot=aggregate.snapshot(),
    )  # fmt: skip
    report = build_report("d", [record, record], sampler_priority="normal", sampler_restarts=1)
    assert report.sampler_restarts == 1
    assert report.lost_deadlines == 10
    assert [i.lost_deadlines for i in report.instances] == [5, 5]
    assert [i.precision_errors for i in report.instances] == [5, 5]
    old = msgspec.json.decode(b'{"deployment": "d"}', type=type(report))
    assert (old.sampler_restarts, old.lost_deadlines) == (0, 0)  # files written before


# -- stop after a dead supervisor: the shared sampler let go -----------------------------------


async def _answering(path: str, status: Status, tg: anyio.abc.TaskGroup) -> None:
    """A stand-in host sampler at `path` that answers every StatusQuery with `status`."""
    listener = await anyio.create_unix_listener(path)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        """One status query, one answer, hang up (as a status query is served)."""
        reader = FrameReader()
        async with stream:
            while True:
                bodies = reader.feed(await stream.receive())
                if any(isinstance(decode_command(body), StatusQuery) for body in bodies):
                    await stream.send(encode_frame(status))
                    return

    async def run() -> None:
        async with listener:
            await listener.serve(serve)

    tg.start_soon(run)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("attached", "released"),
    [({}, True), ({"dep-a": 0}, True), ({"dep-b": 3}, True), ({"dep-a": 2}, False)],
)
async def test_stop_checks_the_shared_sampler_holds_no_file_of_the_deployment(
    tmp_path: Path, attached: dict[str, int], released: bool
) -> None:
    path = str(tmp_path / "sampler.sock")
    record = SamplingRecord(interval_ms=1.0, profile="p", pid=7, address=f"unix://{path}")
    # Nothing listening (it idled out, or died): nothing is held.
    assert await sampler_released("dep-a", record, bound_s=0.2) is True
    status = Status(pid=7, priority="normal", deployments=len(attached), files=0, attached=attached)
    async with anyio.create_task_group() as tg:
        await _answering(path, status, tg)
        with anyio.fail_after(10):
            assert await sampler_released("dep-a", record, bound_s=0.3) is released
        tg.cancel_scope.cancel()
    # No address recorded (a state file of before the host sampler): nothing to check.
    assert await sampler_released("dep-a", SamplingRecord(interval_ms=1.0, profile="p")) is True
