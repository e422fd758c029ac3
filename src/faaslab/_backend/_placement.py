"""Which Swarm nodes may run an instance, and which one it goes to (pure).

faaslab runs one service per instance, so Swarm's own spread preference
(which balances the tasks *of one service*) cannot spread a function's
instances. Spreading is therefore decided here: the nodes that are ready,
active and satisfy the function's constraints, in a stable order, and
instance ``i`` pinned to the ``i``-th of them, round robin. The constraint
language is Swarm's: ``node.id``, ``node.hostname``, ``node.role``,
``node.platform.os``, ``node.platform.arch``, ``node.labels.<key>``,
``engine.labels.<key>``, with ``==`` or ``!=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import SpecError

__all__ = ("eligible_nodes", "node_matches", "parse_constraint", "spread_node")


def parse_constraint(constraint: str) -> tuple[str, str, str]:
    """``(key, operator, value)`` of ``key==value`` or ``key!=value``."""
    for operator in ("==", "!="):
        key, found, value = constraint.partition(operator)
        if found:
            return key.strip(), operator, value.strip()
    raise SpecError(f"placement: {constraint!r} is not key==value or key!=value")


def _node_value(node: Mapping[str, Any], key: str) -> str | None:
    description = node.get("Description") or {}
    spec = node.get("Spec") or {}
    if key == "node.id":
        return str(node.get("ID", ""))
    if key == "node.hostname":
        return str(description.get("Hostname", ""))
    if key == "node.role":
        return str(spec.get("Role", ""))
    if key == "node.platform.os":
        return str((description.get("Platform") or {}).get("OS", ""))
    if key == "node.platform.arch":
        return str((description.get("Platform") or {}).get("Architecture", ""))
    if key.startswith("node.labels."):
        value = (spec.get("Labels") or {}).get(key.removeprefix("node.labels."))
        return None if value is None else str(value)
    if key.startswith("engine.labels."):
        labels = (description.get("Engine") or {}).get("Labels") or {}
        value = labels.get(key.removeprefix("engine.labels."))
        return None if value is None else str(value)
    raise SpecError(f"placement: unknown constraint key {key!r}")


def node_matches(node: Mapping[str, Any], constraints: Sequence[str]) -> bool:
    """Whether a node (the engine's Node object) satisfies every constraint."""
    for constraint in constraints:
        key, operator, value = parse_constraint(constraint)
        actual = _node_value(node, key)
        equal = actual is not None and actual.lower() == value.lower()
        if equal != (operator == "=="):
            return False
    return True


def eligible_nodes(nodes: Sequence[Mapping[str, Any]], constraints: Sequence[str]) -> list[str]:
    """Ids of the ready, active nodes that satisfy the constraints, in a stable order."""
    found = []
    for node in nodes:
        ready = (node.get("Status") or {}).get("State") == "ready"
        active = (node.get("Spec") or {}).get("Availability") == "active"
        if ready and active and node_matches(node, constraints):
            hostname = str((node.get("Description") or {}).get("Hostname", ""))
            found.append((hostname, str(node["ID"])))
    return [node_id for _, node_id in sorted(found)]


def spread_node(eligible: Sequence[str], index: int) -> str | None:
    """The node of instance ``index``: round robin over the eligible nodes."""
    if not eligible:
        return None
    return eligible[index % len(eligible)]
