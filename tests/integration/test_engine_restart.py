"""Losing the engine under a live `faaslab start` deployment (a private dockerd, real processes).

The deployment rides a restart out: it notices the engine is gone, keeps its
state, says so in `status`, and once the engine answers recreates its
instances on their host ports. Past the bound it ends, writing the
statistics it has; `stop` then removes what the engine kept.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from privateengine import PrivateEngine, open_private_engine, private_engine_available

from faaslab._backend import owner_alive
from faaslab._storage import nosql_image, storage_image

#: An engine restart takes a daemon shutdown and start on a loaded machine: more than the default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FUNCTION = """
def handler(event):
    return {"ok": event.get("n", 0)}
"""
#: The issue's bound: invocations work again within this of the engine answering.
BACK_WITHIN_S = 90.0
#: Through the deployment file's ``nosql`` entry: "write" makes a table and an
#: item, then (either way) the item is printed as JSON (``null`` when absent).
NOSQL_ITEM = """
import json, sys
import anyio
from faaslab._storage._nosql_client import NoSQLClient, open_dynamodb

entry = json.load(open(sys.argv[1]))["nosql"]
keys = {"access_key": entry["access_key"], "secret_key": entry["secret_key"]}

async def main():
    async with open_dynamodb(entry["address"], **keys) as client:
        db = NoSQLClient(client, endpoint=entry["address"], **keys)
        if sys.argv[2] == "write":
            await db.create_table("kept", "k")
            await db.put("kept", {"k": "a", "v": 7})
        print(json.dumps(await db.get("kept", {"k": "a"})))

anyio.run(main)
"""


@pytest.fixture(scope="module")
def private_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateEngine]:
    """One private dockerd for this module, its images loaded once (docker save | load)."""
    missing = private_engine_available()
    if missing:
        pytest.skip(missing)
    token = secrets.token_hex(3)
    root = Path(f"/tmp/faaslab-privd-{token}")  # short: the socket's path is bounded
    with open_private_engine(
        root, f"faaslab-privd-{token}", ["faaslab/python:3.11", storage_image(), nosql_image()]
    ) as engine:
        yield engine


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` (a command's answer: no event exists for it) until true; when."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g} s: {what}")
        time.sleep(0.25)
    return time.monotonic()


def cleanup(engine: PrivateEngine, out: Path, tmp_path: Path) -> None:
    """Whatever happened: the engine answering, the deployment stopped."""
    if not engine.answers():
        engine.start()
    if out.exists() and state_of(out)["status"] != "stopped":
        engine.faaslab("stop", str(out), str(tmp_path / "cleanup.json"))


def start_on(engine: PrivateEngine, code: Path, deployment_id: str, *options: str) -> Path:
    """`faaslab start` of one function against the private engine; its state file."""
    out = code.parent / "out.json"
    started = engine.faaslab(
        "start", str(code), "--measure-interval", "1", "--id", deployment_id, "-o", str(out),
        *options,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    return out


def state_of(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_a_restart_is_ridden_out_on_the_same_ports(
    private_engine: PrivateEngine,
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
) -> None:
    engine = private_engine
    out = start_on(
        engine, make_function("fn", FUNCTION), deployment_id, "--deployments", "2", "--nosql"
    )
    try:
        before = state_of(out)
        ports = sorted(f["port"] for f in before["functions"])
        storage_port = before["storage"]["mapped_port"]
        nosql_port = before["nosql"]["mapped_port"]
        assert engine.faaslab("invoke", str(out), "fn", "--event", '{"n": 1}').returncode == 0
        written = engine.python(NOSQL_ITEM, str(out), "write")
        assert written.returncode == 0, written.stderr
        assert json.loads(written.stdout) == {"k": "a", "v": 7}

        engine.stop(signal.SIGTERM)  # a restart: dockerd stops every container first
        wait_until(
            lambda: "engine: UNREACHABLE since" in engine.faaslab("status", str(out)).stdout,
            60,
            "status says the engine is unreachable",
        )
        refused = engine.faaslab("invoke", str(out), "fn")
        assert refused.returncode == 1
        assert "EngineUnreachable" in refused.stdout
        assert "lost since" in refused.stdout
        assert state_of(out)["status"] == "running"  # the state is kept

        answering = engine.start()
        back = wait_until(
            lambda: engine.faaslab("invoke", str(out), "fn", "--event", '{"n": 2}').returncode
            == 0,
            BACK_WITHIN_S,
            "invoke works again after the engine answered",
        )
        print(f"invoke worked again {back - answering:.1f} s after the engine answered")
        after = state_of(out)
        assert sorted(f["port"] for f in after["functions"]) == ports  # the same host ports
        assert after["storage"]["mapped_port"] == storage_port
        # The NoSQL server came back on its port, its volume's tables and items kept.
        assert after["nosql"]["mapped_port"] == nosql_port
        assert after["nosql"]["instance_id"] != before["nosql"]["instance_id"]
        kept = engine.python(NOSQL_ITEM, str(out), "read")
        assert kept.returncode == 0, kept.stderr
        assert json.loads(kept.stdout) == {"k": "a", "v": 7}
        status = engine.faaslab("status", str(out))
        assert "1 outage(s) ridden out" in status.stdout, status.stdout
        # What the restart left (the stopped containers) is gone already.
        mine = f"label=faaslab.deployment={deployment_id}"
        exited = engine.docker("ps", "-aq", "--filter", "status=exited", "--filter", mine)
        assert exited.stdout.split() == []

        stats = tmp_path / "memory_stats.json"
        stopped = engine.faaslab("stop", str(out), str(stats))
        assert stopped.returncode == 0, stopped.stderr
        memory = json.loads(stats.read_text())
        counts = [v["number of measurements"] for k, v in memory.items() if k != "precision_errors"]
        assert len(counts) == 4  # two function containers before the restart, two after
        assert all(n > 0 for n in counts)
        assert engine.objects(f"faaslab.deployment={deployment_id}") == []
    finally:
        cleanup(engine, out, tmp_path)


def test_past_the_bound_the_deployment_ends_and_stop_cleans_up(
    private_engine: PrivateEngine,
    tmp_path: Path,
    make_function: Callable[..., Path],
    deployment_id: str,
) -> None:
    engine = private_engine
    out = start_on(engine, make_function("fn", FUNCTION), deployment_id, "--engine-timeout", "3")
    try:
        supervisor = state_of(out)["supervisor"]["owner"]
        assert engine.faaslab("invoke", str(out), "fn").returncode == 0
        engine.stop(signal.SIGTERM)
        wait_until(lambda: not owner_alive(supervisor), 60, "the supervisor ends past the bound")
        ended = state_of(out)
        assert ended["status"] == "ended"
        assert "for more than 3 s" in ended["ended_reason"]
        own_stats = out.with_name("memory_report.json")
        report = json.loads(own_stats.read_text())
        assert report["complete"] is False
        assert "unreachable" in report["incomplete_reason"]
        assert "ended" in engine.faaslab("status", str(out)).stdout

        engine.start()
        left = engine.objects(f"faaslab.deployment={deployment_id}")
        assert left, "the engine kept the stopped containers, network and volume"
        stats = tmp_path / "stats.json"
        stopped = engine.faaslab("stop", str(out), str(stats))
        assert stopped.returncode == 0, stopped.stderr
        assert "it had ended" in stopped.stdout
        assert engine.objects(f"faaslab.deployment={deployment_id}") == []
        assert state_of(out)["status"] == "stopped"
        memory = json.loads(stats.read_text())
        assert any(
            v["number of measurements"] > 0 for k, v in memory.items() if k != "precision_errors"
        )
        again = engine.faaslab("stop", str(out), str(stats))
        assert again.returncode == 0
        assert "already stopped" in again.stdout
    finally:
        cleanup(engine, out, tmp_path)
