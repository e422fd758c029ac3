"""A container run to completion: created, started, followed, waited for, always removed.

pip and npm installs and a function's load check are such runs. What they
share is here: the create is shielded (a create cancelled mid-request may
still happen on the engine, and its id would be lost), the output is passed
on line by line as it comes and its tail kept for the error, the wait is
bounded, and the container is removed whatever happens, cancellation included.

With ``own_network`` the container gets a bridge network of its own (same
name and labels as the container), removed with it: outbound access (an
installer reaching its package index) without Docker's default bridge, which
lets every container on it reach every other, and which some engines have
disabled (``dockerd --bridge=none``) or lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import msgspec

from ._protocol import Backend

__all__ = ("OneShotResult", "run_to_exit")

#: Bound on the engine's create and remove calls.
_STEP_BOUND_S = 30.0


class OneShotResult(msgspec.Struct, frozen=True):
    """How a one-shot container ended: its exit status and its last output lines."""

    #: The exit status, or None when it did not exit within the timeout (it was removed).
    exit_code: int | None
    tail: list[str]

    @property
    def output(self) -> str:
        return "\n".join(self.tail)


async def run_to_exit(
    engine: Backend,
    config: Mapping[str, Any],
    *,
    name: str,
    timeout_s: float,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 40,
    own_network: bool = False,
) -> OneShotResult:
    """Create and start a container, follow its output until it exits, remove it."""
    tail: deque[str] = deque(maxlen=tail_lines)
    container_id = network_id = ""
    try:
        with anyio.CancelScope(shield=True), anyio.fail_after(_STEP_BOUND_S):
            if own_network:
                network_id = await engine.create_network(name, config.get("Labels") or {})
                host_config = {**config.get("HostConfig", {}), "NetworkMode": name}
                config = {**config, "HostConfig": host_config}
            container_id = await engine.create_container(config, name=name)
        await engine.start_container(container_id)
        code: int | None = None
        with anyio.move_on_after(timeout_s):
            code = await _follow_until_exit(engine, container_id, tail, on_line)
        if not tail:
            logs = await engine.container_logs(container_id, tail=tail_lines)
            tail.extend(logs.splitlines())
        return OneShotResult(code, list(tail))
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(_STEP_BOUND_S):
            if container_id:
                await engine.remove_container(container_id)
            if network_id:
                await engine.remove_network(network_id)


async def _follow_until_exit(
    engine: Backend,
    container_id: str,
    tail: deque[str],
    on_line: Callable[[str], None] | None,
) -> int:
    """Pass the output on as it comes until the container exits; return its status."""
    followed = anyio.Event()

    async def follow() -> None:
        try:
            async for line in engine.follow_logs(container_id):
                tail.append(line)
                if on_line is not None:
                    on_line(line)
        finally:
            followed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        code = await engine.wait_container(container_id)
        # The log stream ends with the container; a moment more for its last lines.
        with anyio.move_on_after(5):
            await followed.wait()
        tg.cancel_scope.cancel()
    return code
