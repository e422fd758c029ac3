"""What the storage servers' actors share: image, container and volume, readiness, teardown.

The object store (``_actor``) and the NoSQL store (``_nosql``) each run one
server container; both wait for it the same way (a real, authenticated API
call, polled until a deadline while the container's exit is watched) and
remove it the same way (a clean stop first when the data stays, bounded,
retried once; skipped, with a warning, when the engine is gone), and both
come back the same way after the engine restarted (:class:`ServerContainer`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import structlog

from .._backend import Backend, InstanceRequest
from .._errors import EngineError, EngineUnreachable, FaaslabError, StorageError

__all__ = (
    "ENGINE_STEP_S",
    "ServerContainer",
    "pull_if_missing",
    "remove_server",
    "run_server",
    "wait_server_ready",
)

log = structlog.get_logger()

#: Bound on one engine step of setting up or tearing down (create, remove).
ENGINE_STEP_S = 30.0
#: SIGTERM grace when the data is kept (a clean shutdown flushes it).
STOP_GRACE_S = 5.0
#: Bound on one readiness probe: a server that accepts but never answers must not hang it.
PROBE_TIMEOUT_S = 2.0

Probe = Callable[[], Awaitable[None]]


async def pull_if_missing(
    engine: Backend,
    image: str,
    say: Callable[[str], None],
    *,
    what: str,
    instead: str,
    bound_s: float = 300.0,
) -> None:
    """Pull ``image`` unless the engine has it; a clear error (``instead``) when it cannot."""
    if await engine.image_labels(image) is not None:
        return
    say(f"pulling {image}")
    try:
        with anyio.fail_after(bound_s):
            await engine.pull_image(image)
    except (EngineError, TimeoutError) as exc:
        raise StorageError(
            f"{what} needs the image {image}, which the engine does not have and cannot pull "
            f"here ({exc or 'timed out'}); {instead}"
        ) from exc


class ServerContainer:
    """A server run by :func:`run_server`: its ids, where the host reaches it, how to redo it.

    It is an *instance* of the backend (a container on this host, a one-task
    service on Swarm): ``config(host_port)`` builds its container's create
    body, None letting the engine pick the port. :meth:`recreate` is for
    after the engine restarted (which stops every container): the stopped
    one is removed and a new one made on the same volume and, where it is
    free, the same host port, so the address the host's clients and the
    deployment file name stays right.
    """

    def __init__(
        self,
        engine: Backend,
        *,
        name: str,
        alias: str,
        network: str,
        config: Callable[[int | None], Mapping[str, Any]],
        port: int,
        stop_grace_s: float,
        ready_timeout_s: float,
        what: str,
    ) -> None:
        self._engine = engine
        self._name = name
        self._alias = alias
        self._network = network
        self._config = config
        self._port = port
        self._stop_grace_s = stop_grace_s
        self._ready_timeout_s = ready_timeout_s
        self._what = what
        #: The backend's id (what to stop and remove), and its container's.
        self.instance_id = ""
        self.container_id = ""
        self.host = "127.0.0.1"
        self.host_port = 0

    @property
    def endpoint(self) -> str:
        """``host:port`` where the host reaches the server."""
        return f"{self.host}:{self.host_port}"

    async def create_and_start(self, host_port: int | None = None) -> None:
        request = InstanceRequest(
            name=self._name,
            alias=self._alias,
            network=self._network,
            port=self._port,
            container=dict(self._config(host_port)),
            stop_grace_s=self._stop_grace_s,
        )
        # Shielded: a create cancelled mid-request may still happen on the
        # engine, and then we would not know what to remove.
        with anyio.CancelScope(shield=True), anyio.fail_after(ENGINE_STEP_S):
            self.instance_id = await self._engine.create_instance(request)
        try:
            with anyio.fail_after(self._ready_timeout_s):
                handle = await self._engine.start_instance(self.instance_id, request)
        except TimeoutError:
            raise StorageError(
                f"the {self._what} server did not start running within "
                f"{self._ready_timeout_s:g} s"
            ) from None
        except EngineUnreachable:
            raise
        except EngineError as exc:
            raise StorageError(f"the {self._what} server cannot run: {exc}") from exc
        self.container_id = handle.container_id
        self.host, self.host_port = handle.host, handle.port

    async def recreate(self) -> None:
        """The server again after an engine restart: same name, volume and host port."""
        if self.instance_id:  # stopped by the restart; its name is needed again
            with anyio.CancelScope(shield=True), anyio.fail_after(ENGINE_STEP_S):
                await self._engine.remove_instance(self.instance_id)
            self.instance_id = self.container_id = ""
        await self.create_and_start(self.host_port or None)


@asynccontextmanager
async def run_server(
    engine: Backend,
    *,
    name: str,
    alias: str,
    network: str,
    labels: Mapping[str, str],
    config: Callable[[int | None], Mapping[str, Any]],
    port: int,
    keep: bool,
    ready_timeout_s: float,
    what: str,
) -> AsyncIterator[ServerContainer]:
    """Create the volume ``name`` and the server (``config`` mounts it), start it.

    Yields the :class:`ServerContainer` (ids, where the host reaches ``port``).
    Leaving the block for any reason removes the server (the current one,
    after a recreate), and the volume unless ``keep``, under a shielded,
    bounded scope.
    """
    volume_made = False
    server = ServerContainer(
        engine,
        name=name,
        alias=alias,
        network=network,
        config=config,
        port=port,
        # A clean stop only matters when the data stays.
        stop_grace_s=STOP_GRACE_S if keep else 1.0,
        ready_timeout_s=ready_timeout_s,
        what=what,
    )
    try:
        with anyio.CancelScope(shield=True), anyio.fail_after(ENGINE_STEP_S):
            await engine.create_volume(name, labels)
            volume_made = True
        await server.create_and_start()
        yield server
    finally:
        with anyio.CancelScope(shield=True):
            await remove_server(
                engine, server.instance_id, name if volume_made else None, keep=keep, what=what
            )


async def wait_server_ready(
    engine: Backend,
    instance_id: str,
    probe: Probe,
    *,
    server: str,
    call: str,
    logs_label: str,
    timeout_s: float,
) -> None:
    """Until ``probe`` succeeds, watching the container: an exit fails fast.

    ``server`` names it in the error ("the storage server (seaweedfs)"),
    ``call`` says what never succeeded ("an authenticated S3 call").
    """
    deadline = time.monotonic() + timeout_s
    outcome: dict[str, Any] = {}

    async with anyio.create_task_group() as tg:

        async def poll() -> None:
            outcome["ready"], outcome["last"] = await _probe_until(probe, deadline)
            tg.cancel_scope.cancel()

        async def watch() -> None:
            outcome["exit"] = await engine.wait_instance(instance_id)
            tg.cancel_scope.cancel()

        tg.start_soon(poll)
        tg.start_soon(watch)

    if outcome.get("ready"):
        return
    logs = await engine.instance_logs(instance_id, tail=30)
    if "exit" in outcome:
        message = f"{server} exited with code {outcome['exit']} before it was ready"
    else:
        message = (
            f"{server} did not answer {call} within {timeout_s:g} s "
            f"(last: {outcome.get('last') or 'no answer'})"
        )
    if logs.strip():
        message += f"\n--- last {logs_label} log lines ---\n" + logs.rstrip()
    raise StorageError(message)


async def _probe_until(probe: Probe, deadline: float) -> tuple[bool, str]:
    """Probe until it succeeds or the deadline passes; return (ready, last error)."""
    delay = 0.02
    last = ""
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            with anyio.fail_after(min(PROBE_TIMEOUT_S, remaining)):
                await probe()
            return True, ""
        except (StorageError, TimeoutError) as exc:
            last = str(exc) or type(exc).__name__
        # The servers give no signal when they are ready: poll, bounded by the deadline.
        await anyio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)
    return False, last


async def remove_server(
    engine: Backend, instance_id: str, volume: str | None, *, keep: bool, what: str
) -> None:
    """Remove the server (a clean stop first when the data stays), then the volume."""
    try:
        await _remove(engine, instance_id, volume if not keep else None, keep=keep, what=what)
    except EngineUnreachable as exc:
        # Nothing to retry against: what is left goes with the next `faaslab
        # stop` (or the deployment's own sweep once the engine answers).
        log.warning(f"{what}.teardown_skipped", instance=instance_id[:12], error=str(exc))


async def _remove(
    engine: Backend, instance_id: str, volume: str | None, *, keep: bool, what: str
) -> None:
    try:
        with anyio.fail_after(STOP_GRACE_S + 2 * ENGINE_STEP_S):
            if instance_id:
                if keep:
                    await engine.stop_instance(instance_id, STOP_GRACE_S)
                await engine.remove_instance(instance_id)
            if volume is not None:
                await engine.remove_volume(volume)
    except EngineUnreachable:
        raise
    except (FaaslabError, TimeoutError) as exc:
        log.warning(f"{what}.teardown_retry", instance=instance_id[:12], error=str(exc))
        try:
            with anyio.move_on_after(ENGINE_STEP_S):
                if instance_id:
                    await engine.remove_instance(instance_id)
                if volume is not None:
                    await engine.remove_volume(volume)
        except FaaslabError as again:
            # Never mask the error that ended the server: the deployment's
            # sweep, `faaslab stop` or `faaslab gc` removes what is left.
            log.warning(f"{what}.teardown_failed", instance=instance_id[:12], error=str(again))
