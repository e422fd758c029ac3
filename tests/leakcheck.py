"""Leak check for the test run: engine objects labeled faaslab that appeared during it.

    python tests/leakcheck.py snapshot FILE   # before the run
    python tests/leakcheck.py compare FILE    # after: exit 1 listing what leaked

Processes count too: whatever of the tests' own engines (private dockerds,
their containerd and shims) still runs at the end and did not before.

Objects that existed before the run (say, kept by a developer's manual run)
are not counted: CI reuses this machine's engine data. Objects of *another*
test run going on at the same time (deployment ids ``t<run>-<n>`` with a
different run id than ``FAASLAB_TEST_RUN``) are not counted either, nor those
of any other faaslab process still alive that is not of this run (a
benchmark someone runs meanwhile on a shared engine): an owner
(``faaslab.owner``) that still runs without this run's ``FAASLAB_TEST_RUN``
in its environment is someone else's. Every process of this run has ended
by the time of the comparison, so what this run left is always counted.

The host sampler is a process, not an engine object: the tests' deployments
share one of their own (:func:`run_sampler_address`, set by
``tests/integration/conftest.py``), which the tests stop by its pid at the
end. ``compare`` counts it as leaked when it still runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import sys
from pathlib import Path

import anyio

from faaslab._backend import Label, deployment_filter, owner_alive
from faaslab._backend._docker import open_engine

#: Where the tests' own engines live (``privateengine``, ``swarm_env``): a
#: process naming one in its command line (a dockerd, containerd, a shim) is
#: the suite's, and must be gone by the end of the run.
TEST_ENGINE_ROOTS = ("/tmp/faaslab-privd-", "/tmp/fsw")

#: Deployment ids of test runs (``t<run>-<n>``, the conftest fixture's, here or elsewhere).
OTHER_TEST_RUN = re.compile(r"^t[0-9a-z]+-\d")


def run_sampler_address(run: str) -> str:
    """The host sampler of test run `run`: private to it (so that killing it,
    or the code it runs, touches no other run), short (107-byte socket paths)."""
    return f"unix:///tmp/faaslab-sampler-{run}/sampler.sock"


def live_sampler_pid(address: str) -> int | None:
    """The pid of the host sampler at a unix `address`, when one runs (it
    holds ``sampler.pid`` locked for its whole life)."""
    pid_file = Path(address.removeprefix("unix://")).with_suffix(".pid")
    try:
        with open(pid_file) as file:
            try:
                fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = file.read().strip()
                return int(text) if text.isdigit() else None
    except OSError:
        return None
    return None


def stop_sampler_at(address: str, bound_s: float = 15.0) -> int | None:
    """Stop the host sampler at a unix `address` by its pid (SIGTERM, then
    SIGKILL past `bound_s`) and wait for its exit; its pid, None if none ran."""
    pid = live_sampler_pid(address)
    if pid is None:
        return None
    try:
        pidfd = os.pidfd_open(pid)  # not our child: wait on its pidfd
    except ProcessLookupError:
        return pid
    try:
        os.kill(pid, signal.SIGTERM)
        ready, _, _ = select.select([pidfd], [], [], bound_s)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            select.select([pidfd], [], [], bound_s)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)
    return pid


def _someone_elses(owner: str | None, run: str) -> bool:
    """Whether ``owner`` is a live process of another run or tool."""
    if not owner_alive(owner):
        return False
    assert owner is not None
    try:
        environ = Path(f"/proc/{owner.split(':', 1)[0]}/environ").read_bytes()
    except OSError:
        return False  # cannot tell: count it
    return f"FAASLAB_TEST_RUN={run}".encode() not in environ.split(b"\0")


async def _objects() -> dict[str, tuple[str, str | None]]:
    """Every faaslab-labeled object: "kind id" → (deployment id, owner token)."""
    label = deployment_filter()
    async with open_engine() as engine:
        containers = await engine.containers_labeled(label)
        networks = await engine.networks_labeled(label)
        volumes = await engine.volumes_labeled(label)
        services = await engine.services_labeled(label)
        secrets = await engine.secrets_labeled(label)
    found: dict[str, tuple[str, str | None]] = {}
    for c in containers:
        labels = c["Labels"]
        found[f"container {c['Id'][:12]} {c.get('Names')}"] = (
            labels[Label.DEPLOYMENT],
            labels.get(Label.OWNER),
        )
    for n in networks:
        labels = n["Labels"]
        found[f"network {n['Id'][:12]} {n.get('Name')}"] = (
            labels[Label.DEPLOYMENT],
            labels.get(Label.OWNER),
        )
    for v in volumes:
        labels = v.get("Labels") or {}
        found[f"volume {v['Name']}"] = (labels.get(Label.DEPLOYMENT, ""), labels.get(Label.OWNER))
    for kind, items in (("service", services), ("secret", secrets)):
        for item in items:
            labels = (item.get("Spec") or {}).get("Labels") or {}
            found[f"{kind} {item['ID'][:12]}"] = (
                labels.get(Label.DEPLOYMENT, ""),
                labels.get(Label.OWNER),
            )
    return found


def _test_engine_processes() -> dict[str, str]:
    """Processes of the tests' own engines: "pid:start time" → command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            start = (entry / "stat").read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            continue
        if any(root in cmdline for root in TEST_ENGINE_ROOTS):
            found[f"{entry.name}:{start}"] = cmdline.strip()
    return found


def main(argv: list[str]) -> int:
    action, path = argv
    now = anyio.run(_objects)
    processes = _test_engine_processes()
    if action == "snapshot":
        with open(path, "w") as f:
            json.dump({"objects": sorted(now), "processes": sorted(processes)}, f)
        return 0
    with open(path) as f:
        snapshot = json.load(f)
    before = set(snapshot["objects"])
    run = os.environ.get("FAASLAB_TEST_RUN", "")
    ours = f"t{run}-"
    leaked = sorted(
        item
        for item, (deployment, owner) in now.items()
        if item not in before
        and not (OTHER_TEST_RUN.match(deployment) and not deployment.startswith(ours))
        and not _someone_elses(owner, run)
    )
    for item in leaked:
        print(f"LEAKED: {item} (deployment {now[item][0]})", file=sys.stderr)
    sampler = live_sampler_pid(run_sampler_address(run)) if run else None
    if sampler is not None:
        print(f"LEAKED: the run's host sampler, pid {sampler}, still runs", file=sys.stderr)
        leaked.append(f"host sampler {sampler}")
    for key, cmdline in sorted(processes.items()):
        if key not in snapshot["processes"]:
            print(f"LEAKED: process {key.split(':')[0]} ({cmdline[:120]})", file=sys.stderr)
            leaked.append(f"process {key}")
    if leaked:
        print(f"leak check: {len(leaked)} faaslab object(s) left by this run", file=sys.stderr)
        return 1
    print("leak check: nothing left by this run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
