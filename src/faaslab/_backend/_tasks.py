"""Swarm tasks as the backend reads them from the task list (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ("TERMINAL", "NodeTask", "exit_code", "parse_task")

#: Task states after which a task never runs again.
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})


class NodeTask(msgspec.Struct, frozen=True, kw_only=True):
    """One task of a service, as the swarm's task list says."""

    task_id: str
    node: str
    node_address: str
    state: str
    #: The task's error or status message.
    message: str
    container_id: str
    #: Its address on the given overlay network ("" before it has one).
    overlay_address: str
    #: Host-mode published ports: target port -> published port.
    published: dict[int, int] = {}


def parse_task(task: Mapping[str, Any], network: str | None, nodes: Mapping[str, str]) -> NodeTask:
    status = task.get("Status") or {}
    overlay = ""
    for attachment in task.get("NetworksAttachments") or []:
        spec = (attachment.get("Network") or {}).get("Spec") or {}
        if network is None or spec.get("Name") == network:
            addresses = attachment.get("Addresses") or []
            if addresses:
                overlay = str(addresses[0]).split("/")[0]
                break
    # One entry per address family, IPv4 first: their ports differ when one
    # family's port was taken on the node. faaslab dials IPv4: keep the first.
    published: dict[int, int] = {}
    for port in (status.get("PortStatus") or {}).get("Ports") or []:
        if port.get("PublishedPort"):
            published.setdefault(int(port["TargetPort"]), int(port["PublishedPort"]))
    node = str(task.get("NodeID") or "")
    return NodeTask(
        task_id=str(task.get("ID", "")),
        node=node,
        node_address=nodes.get(node, ""),
        state=str(status.get("State", "")),
        message=str(status.get("Err") or status.get("Message") or ""),
        container_id=str((status.get("ContainerStatus") or {}).get("ContainerID") or ""),
        overlay_address=overlay,
        published=published,
    )


def exit_code(message: str) -> int:
    """A task's exit code from its error (``task: non-zero exit (137)``), -1 when none."""
    if "non-zero exit (" in message:
        try:
            return int(message.rsplit("(", 1)[1].split(")")[0])
        except ValueError:
            return -1
    return 0 if message in ("finished", "") else -1
