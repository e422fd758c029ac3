"""Leak check for the test run: engine objects labeled faaslab that appeared during it.

    python tests/leakcheck.py snapshot FILE   # before the run
    python tests/leakcheck.py compare FILE    # after: exit 1 listing what leaked

Objects that existed before the run (say, kept by a developer's manual run)
are not counted: CI reuses this machine's engine data. Objects of *another*
test run going on at the same time (deployment ids ``t<run>-<n>`` with a
different run id than ``FAASLAB_TEST_RUN``) are not counted either.
"""

from __future__ import annotations

import json
import os
import re
import sys

import anyio

from faaslab._backend import Label, deployment_filter
from faaslab._backend._docker import open_engine

OTHER_TEST_RUN = re.compile(r"^t[0-9a-f]{6}-")


async def _objects() -> dict[str, str]:
    """Every faaslab-labeled object: "kind id" → deployment id."""
    label = deployment_filter()
    async with open_engine() as engine:
        containers = await engine.containers_labeled(label)
        networks = await engine.networks_labeled(label)
        volumes = await engine.volumes_labeled(label)
        services = await engine.services_labeled(label)
        secrets = await engine.secrets_labeled(label)
    found: dict[str, str] = {}
    for c in containers:
        found[f"container {c['Id'][:12]} {c.get('Names')}"] = c["Labels"][Label.DEPLOYMENT]
    for n in networks:
        found[f"network {n['Id'][:12]} {n.get('Name')}"] = n["Labels"][Label.DEPLOYMENT]
    for v in volumes:
        found[f"volume {v['Name']}"] = (v.get("Labels") or {}).get(Label.DEPLOYMENT, "")
    for kind, items in (("service", services), ("secret", secrets)):
        for item in items:
            labels = (item.get("Spec") or {}).get("Labels") or {}
            found[f"{kind} {item['ID'][:12]}"] = labels.get(Label.DEPLOYMENT, "")
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
    run = os.environ.get("FAASLAB_TEST_RUN", "")
    ours = f"t{run}-"
    leaked = sorted(
        item
        for item, deployment in now.items()
        if item not in before
        and not (OTHER_TEST_RUN.match(deployment) and not deployment.startswith(ours))
    )
    for item in leaked:
        print(f"LEAKED: {item} (deployment {now[item]})", file=sys.stderr)
    if leaked:
        print(f"leak check: {len(leaked)} faaslab object(s) left by this run", file=sys.stderr)
        return 1
    print("leak check: nothing left by this run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
