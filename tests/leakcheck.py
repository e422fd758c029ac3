"""Leak check for the test run: engine objects labeled faaslab that appeared during it.

    python tests/leakcheck.py snapshot FILE   # before the run
    python tests/leakcheck.py compare FILE    # after: exit 1 listing what leaked

Objects that existed before the run (say, kept by a developer's manual run)
are not counted: CI reuses this machine's engine data.
"""

from __future__ import annotations

import json
import sys

import anyio

from faaslab import _labels
from faaslab._engine import open_engine


async def _objects() -> set[str]:
    label = _labels.deployment_filter()
    async with open_engine() as engine:
        containers = await engine.containers_labeled(label)
        networks = await engine.networks_labeled(label)
        volumes = await engine.volumes_labeled(label)
    found = {f"container {c['Id'][:12]} {c.get('Names')} {c.get('State')}" for c in containers}
    found |= {f"network {n['Id'][:12]} {n.get('Name')}" for n in networks}
    found |= {f"volume {v['Name']}" for v in volumes}
    return found


def main(argv: list[str]) -> int:
    action, path = argv
    now = anyio.run(_objects)
    if action == "snapshot":
        with open(path, "w") as f:
            json.dump(sorted(now), f)
        return 0
    with open(path) as f:
        before = set(json.load(f))
    # Containers change state (running → exited) between snapshots: compare ids.
    ids_before = {" ".join(item.split()[:2]) for item in before}
    leaked = sorted(item for item in now if " ".join(item.split()[:2]) not in ids_before)
    for item in leaked:
        print(f"LEAKED: {item}", file=sys.stderr)
    if leaked:
        print(f"leak check: {len(leaked)} faaslab object(s) left by this run", file=sys.stderr)
        return 1
    print("leak check: nothing left by this run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
