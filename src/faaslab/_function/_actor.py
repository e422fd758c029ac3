"""The Function actor: one container serving one function instance.

``open_instance`` asks the backend for the instance (its container's create
body: labels, limits, the sandbox below, port published on 127.0.0.1 only;
the backend decides what runs it and how the host reaches it), starts it and
waits until ``/alive`` answers while watching for an early exit; it yields
an :class:`Instance` that serves invocations, and on exit (normal, error or
cancellation) stops and removes it under a shielded scope with a bounded
ladder. Every engine call here is an instance-level one of the Backend
Protocol: nothing here knows whether a container or a service runs it.

The sandbox, as AWS Lambda's execution environment, for every runtime image
alike: the unprivileged ``FUNCTION_USER``, a read-only root filesystem, a
writable ``/tmp`` tmpfs of ``spec.tmp_mb`` (counted against the memory
limit, as tmpfs pages are), the code mounted read-only, no capabilities,
``no-new-privileges``, the engine's default seccomp profile, a PIDs limit,
and a Docker health check on ``GET /alive`` (a bash ``/dev/tcp`` probe:
bash is the one tool every Debian-based runtime image has, and it costs
~1 MB where a Python probe costs ~9 MB in the measured cgroup).
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import msgspec
import structlog

from .._backend import (
    FUNCTION_USER,
    Backend,
    InstanceHandle,
    InstanceRequest,
    InstanceStatus,
    Label,
    hardened_host_config,
    healthcheck,
    loopback_ports,
)
from .._errors import (
    EngineError,
    EngineUnreachable,
    FaaslabError,
    InstanceLost,
    InstanceStartError,
    InvocationTimeout,
)
from .._sampling import CpuMeter, open_cpu_meter
from .._spec import FunctionSpec
from ._http_times import HttpTimes, end_timing, timing
from ._invocation import Invocation, RuntimeAnswer, explain_sandbox
from ._lifecycle import InstanceState, Lifecycle

if TYPE_CHECKING:
    from .._sampling import Sampler

__all__ = (
    "CONTAINER_PORT",
    "ExitInfo",
    "Instance",
    "InstanceContext",
    "container_config",
    "instance_request",
    "open_instance",
)

log = structlog.get_logger()

CONTAINER_PORT = 8080
#: Beyond the SIGTERM grace, how long removal may take before we give up waiting.
REMOVE_BOUND_S = 30.0
_decode_answer = msgspec.json.Decoder(RuntimeAnswer).decode
_JSON_HEADERS = {"Content-Type": "application/json"}


class ExitInfo(msgspec.Struct, frozen=True):
    """How a container ended."""

    exit_code: int
    oom_killed: bool
    reason: str


class InstanceContext(msgspec.Struct, frozen=True, kw_only=True):
    """What every instance of a deployment shares."""

    deployment_id: str
    network: str
    image: str
    start_timeout_s: float
    stop_grace_s: float
    remove: bool
    env: dict[str, str] = {}
    #: Extra bind mounts "host:container:mode".
    binds: list[str] = []
    #: Labels every container of the deployment carries (owner, state file).
    labels: dict[str, str] = {}
    #: The directory mounted as the function's code, when not ``spec.code``
    #: (a SeBS benchmark's built package).
    code: str | None = None


#: The health probe: ``GET /alive`` over bash's /dev/tcp, healthy on a 200 status line.
_ALIVE_PROBE = (
    f"exec 3<>/dev/tcp/127.0.0.1/{CONTAINER_PORT} && "
    'printf "GET /alive HTTP/1.0\\r\\n\\r\\n" >&3 && '
    'read -r -t 4 line <&3 && [[ $line == "HTTP/1."?" 200 "* ]]'
)


def container_config(
    spec: FunctionSpec,
    instance: str,
    ctx: InstanceContext,
    generation: int,
    host_port: int | None = None,
) -> dict[str, Any]:
    """The engine's create-container body for one instance (pure, testable).

    ``host_port`` asks for that port on 127.0.0.1 (a replacement keeping its
    predecessor's); None lets the engine pick a free one.
    """
    env = {
        # Caches of libraries that write under $HOME (matplotlib, numba, ...)
        # land in the one writable place.
        "HOME": "/tmp",
        **ctx.env,
        **spec.env,
        "FAASLAB_INSTANCE": instance,
        "FAASLAB_PORT": str(CONTAINER_PORT),
        "FAASLAB_FUNCTION": spec.name,
        "FAASLAB_CONCURRENCY": str(spec.concurrency),
        "FAASLAB_TMP_MB": str(spec.tmp_mb),
    }
    host = hardened_host_config(memory_mb=spec.memory_mb, cpus=spec.cpus, tmp_mb=spec.tmp_mb)
    return {
        "Image": ctx.image,
        "User": FUNCTION_USER,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": {
            **ctx.labels,
            Label.DEPLOYMENT: ctx.deployment_id,
            Label.FUNCTION: spec.name,
            Label.INSTANCE: instance,
            Label.ROLE: "function",
            "faaslab.generation": str(generation),
        },
        "ExposedPorts": {f"{CONTAINER_PORT}/tcp": {}},
        "Healthcheck": healthcheck(
            ["bash", "-c", _ALIVE_PROBE], start_period_s=ctx.start_timeout_s
        ),
        "HostConfig": {
            **host,
            "Binds": [f"{ctx.code or spec.code_path}:/function/function:ro", *ctx.binds],
            # Only on loopback, on a port the engine picks: nothing outside
            # this machine can reach a function, and parallel runs never clash.
            "PortBindings": loopback_ports(CONTAINER_PORT, host_port),
            "NetworkMode": ctx.network,
            "Init": False,
        },
        "NetworkingConfig": {
            "EndpointsConfig": {ctx.network: {"Aliases": [instance]}},
        },
    }


def instance_request(
    spec: FunctionSpec,
    instance: str,
    ctx: InstanceContext,
    generation: int,
    *,
    engine_name: str,
    node: str | None = None,
    host_port: int | None = None,
) -> InstanceRequest:
    """What the backend is asked to run for one instance (pure, testable).

    ``host_port`` asks a backend that publishes on this host for that port.
    """
    return InstanceRequest(
        name=engine_name,
        alias=instance,
        network=ctx.network,
        port=CONTAINER_PORT,
        container=container_config(spec, instance, ctx, generation, host_port),
        placement=list(spec.placement),
        node=node,
        stop_grace_s=ctx.stop_grace_s,
    )


class Instance:
    """A running, ready container serving one function."""

    def __init__(
        self,
        engine: Backend,
        spec: FunctionSpec,
        name: str,
        handle: InstanceHandle,
        session: aiohttp.ClientSession,
        lifecycle: Lifecycle,
        *,
        cpu: CpuMeter | None = None,
    ) -> None:
        self.engine = engine
        self.spec = spec
        self.name = name
        #: Where it runs and how the host reaches it (the backend's answer).
        self.handle = handle
        self.container_id = handle.container_id
        self.host_port = handle.port
        self.lifecycle = lifecycle
        self.in_flight = 0
        self.calls = 0
        self.started_at = time.time()
        #: Seconds from create to /alive answering.
        self.start_s = 0.0
        #: Set when faaslab itself ends the container (timeout, stop): not a crash.
        self.retired_because: str | None = None
        #: Set when the container died under a call (the crash policy's "invocation").
        self.died_in_call = False
        #: The Sampler actor's per-call memory hooks, when sampling is on
        #: (:meth:`attach_memory`, once the container's Sampler runs).
        self.memory: Sampler | None = None
        #: Its cgroup's CPU time counter (None when the cgroup files are out of reach).
        self.cpu = cpu
        self._session = session
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._url = f"http://{handle.host}:{handle.port}/"
        self._log = log.bind(function=spec.name, instance=name)

    @property
    def url(self) -> str:
        return self._url

    def attach_memory(self, sampler: Sampler) -> None:
        """Give invocations this container's Sampler (its per-call memory hooks)."""
        self.memory = sampler

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        cached = self._timeouts.get(seconds)
        if cached is None:
            cached = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return cached

    @property
    def sebs_url(self) -> str:
        """The ``host:port`` form SeBS's ``out.json`` carries."""
        return f"{self.handle.host}:{self.host_port}"

    @property
    def has_capacity(self) -> bool:
        return self.lifecycle.serving and self.in_flight < self.spec.concurrency

    async def invoke(self, body: bytes, timeout: float) -> Invocation:
        """POST one event (already JSON-encoded) and decode the runtime's answer."""
        if self.in_flight == 0:
            self.lifecycle.to(InstanceState.BUSY)
        self.in_flight += 1
        self.calls += 1
        try:
            cpu_before = self.cpu.read_us() if self.cpu is not None else None
            client_send = time.time()
            started = time.perf_counter()
            http = HttpTimes(started)
            token = timing(http)
            try:
                # aiohttp's own timeout: an anyio cancel scope per call costs
                # tens of µs on the hot path, this a timer handle.
                async with self._session.post(
                    self._url, data=body, headers=_JSON_HEADERS, timeout=self._timeout(timeout)
                ) as response:
                    http.first_byte = time.perf_counter()
                    raw = await response.read()
            except TimeoutError:
                await self.retire(f"invocation timed out after {timeout:g} s")
                raise InvocationTimeout(
                    f"{self.spec.name}: no answer from {self.name} within {timeout:g} s "
                    "(the instance is replaced, as a cloud platform would)"
                ) from None
            except aiohttp.ClientError as exc:
                # Before anything else: the supervisor may see the exit first.
                self.died_in_call = True
                raise await self._lost(exc) from exc
            finally:
                end_timing(token)
            latency = time.perf_counter() - started
            client_receive = time.time()
            cpu_after = self.cpu.read_us() if self.cpu is not None else None
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self.lifecycle.state is InstanceState.BUSY:
                self.lifecycle.to(InstanceState.READY)
        try:
            answer = _decode_answer(raw)
        except msgspec.DecodeError as exc:
            raise FaaslabError(
                f"{self.name} answered HTTP {response.status} with something that is not the "
                f"runtime's JSON: {raw[:200]!r}"
            ) from exc
        return Invocation(
            request_id=answer.request_id,
            function=self.spec.name,
            instance=self.name,
            container_id=self.container_id,
            is_cold=answer.is_cold,
            begin=float(answer.begin or 0.0),
            end=float(answer.end or 0.0),
            compute_time_us=answer.compute_time_us or 0,
            client_send=client_send,
            client_receive=client_receive,
            latency_s=latency,
            output=answer.result.output if answer.result is not None else None,
            error=explain_sandbox(answer.error, self.spec.tmp_mb),
            http_connect_s=http.connected_s,
            http_first_byte_s=http.first_byte_s,
            cpu_time_us=(
                cpu_after - cpu_before
                if cpu_before is not None and cpu_after is not None
                else None
            ),
        )

    async def _lost(self, exc: BaseException) -> InstanceLost:
        """Explain a failed exchange: the container died, was OOM-killed, or the link broke."""
        info = await self.exit_info(wait_s=2.0)
        if info is None:
            return InstanceLost(self.name, f"connection failed: {exc}")
        self.lifecycle.to(InstanceState.FAILED) if self.lifecycle.can(
            InstanceState.FAILED
        ) else None
        return InstanceLost(self.name, info.reason, oom_killed=info.oom_killed)

    async def exit_info(self, wait_s: float = 0.0) -> ExitInfo | None:
        """How the container ended, or None while it still runs (waits up to ``wait_s``)."""
        deadline = time.monotonic() + wait_s
        while True:
            status = await self.engine.instance_status(self.handle.id)
            if status is None:
                return ExitInfo(-1, False, "its container was removed")
            if not status.running:
                return describe_status(status, self.spec.memory_mb)
            if time.monotonic() >= deadline:
                return None
            await anyio.sleep(0.05)

    async def wait_exit(self) -> ExitInfo:
        """Wait until the container ends for any reason."""
        await self.engine.wait_instance(self.handle.id)
        info = await self.exit_info()
        return info or ExitInfo(-1, False, "it stopped")

    async def retire(self, reason: str) -> None:
        """End the container on purpose (e.g. after a timeout): the supervisor replaces it."""
        self.retired_because = reason
        if self.lifecycle.can(InstanceState.FAILED):
            self.lifecycle.to(InstanceState.FAILED)
        with anyio.CancelScope(shield=True):
            await self.engine.kill_instance(self.handle.id)


def describe_exit(state: Mapping[str, Any], memory_mb: int) -> ExitInfo:
    """An ExitInfo from the engine's ``State`` of an exited container."""
    return describe_status(
        InstanceStatus(
            running=False,
            exit_code=int(state.get("ExitCode", -1)),
            oom_killed=bool(state.get("OOMKilled", False)),
        ),
        memory_mb,
    )


def describe_status(status: InstanceStatus, memory_mb: int) -> ExitInfo:
    """An ExitInfo from the backend's status of an ended instance.

    The cause in words: out of memory, a signal (exit 128 + n), or the exit code.
    """
    code = status.exit_code
    oom = status.oom_killed
    if oom:
        reason = f"OOM-killed: it went over its memory limit of {memory_mb} MB (exit {code})"
    elif 128 < code < 128 + signal.NSIG:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        reason = f"killed by {name} (exit {code})"
    elif code == 0:
        reason = "exited with code 0 (the runtime's answer to SIGTERM: stopped from outside)"
    else:
        reason = f"exited with code {code}"
    if status.error and not oom:
        reason += f" ({status.error})"
    return ExitInfo(code, oom, reason)


async def _wait_alive(session: aiohttp.ClientSession, url: str, deadline: float) -> bool:
    """Poll ``/alive`` until it answers 200 or the deadline passes."""
    delay = 0.005
    timeout = aiohttp.ClientTimeout(total=2.0)
    while time.monotonic() < deadline:
        try:
            async with session.get(url + "alive", timeout=timeout) as response:
                if response.status == 200:
                    await response.read()
                    return True
        except (aiohttp.ClientError, TimeoutError):
            pass
        await anyio.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    return False


def _port_taken(exc: EngineError) -> bool:
    """Whether the engine refused a start because the host port is in use."""
    text = str(exc).lower()
    return "port is already allocated" in text or "address already in use" in text


@asynccontextmanager
async def open_instance(
    engine: Backend,
    spec: FunctionSpec,
    index: int,
    ctx: InstanceContext,
    session: aiohttp.ClientSession,
    *,
    generation: int = 0,
    name: str | None = None,
    host_port: int | None = None,
    on_created: Callable[[str], None] | None = None,
    node: str | None = None,
) -> AsyncIterator[Instance]:
    """Create, start and wait for one instance; stop and remove it on exit.

    ``host_port`` asks for that host port (a replacement keeping its
    predecessor's, after an engine restart); when it is taken the engine
    picks another. ``on_created`` learns each instance id as soon as the
    engine made it (what to remove if the engine goes away before we can).
    ``node`` pins it to a node of a multi-node backend (the deployment's spreading).
    """
    created_hook = on_created or (lambda _: None)
    name = name or f"{spec.name}-{index}"
    container_name = f"faaslab-{ctx.deployment_id}-{name}" + (
        f"-r{generation}" if generation else ""
    )
    request = instance_request(
        spec, name, ctx, generation, engine_name=container_name, node=node, host_port=host_port
    )
    lifecycle = Lifecycle()
    container_id = ""
    cpu: CpuMeter | None = None
    try:
        created = time.monotonic()
        # Shielded: a create cancelled mid-request may still happen on the
        # engine, and then we would not know the id of what we must remove.
        with anyio.CancelScope(shield=True), anyio.fail_after(REMOVE_BOUND_S):
            container_id = await engine.create_instance(request)
        created_hook(container_id)
        lifecycle.to(InstanceState.STARTING)
        try:
            with anyio.fail_after(ctx.start_timeout_s):
                try:
                    handle = await engine.start_instance(container_id, request)
                except EngineError as exc:
                    if host_port is None or not _port_taken(exc):
                        raise
                    # The port was taken meanwhile: any free port will do.
                    log.info("instance.port_taken", instance=name, port=host_port, error=str(exc))
                    request = instance_request(
                        spec, name, ctx, generation, engine_name=container_name, node=node
                    )
                    with anyio.CancelScope(shield=True), anyio.fail_after(REMOVE_BOUND_S):
                        await engine.remove_instance(container_id)
                        container_id = ""
                        container_id = await engine.create_instance(request)
                    created_hook(container_id)
                    handle = await engine.start_instance(container_id, request)
        except TimeoutError:
            logs = await engine.instance_logs(container_id)
            raise InstanceStartError(
                f"{name}: did not start running within {ctx.start_timeout_s:g} s", logs=logs
            ) from None
        if not handle.node:
            # On this host: its cgroup's CPU time is readable around each call.
            cpu = await _cpu_meter(engine, handle.container_id)
        instance = Instance(engine, spec, name, handle, session, lifecycle, cpu=cpu)
        ready = await _ready_or_exit(instance, session, created + ctx.start_timeout_s)
        if not ready:
            logs = await engine.instance_logs(container_id)
            raise InstanceStartError(
                f"{name}: /alive did not answer within {ctx.start_timeout_s:g} s", logs=logs
            )
        lifecycle.to(InstanceState.READY)
        instance.start_s = time.monotonic() - created
        yield instance
    except BaseException:
        if lifecycle.can(InstanceState.FAILED):
            lifecycle.to(InstanceState.FAILED)
        raise
    finally:
        if cpu is not None:
            cpu.close()
        if container_id:
            with anyio.CancelScope(shield=True):
                await _teardown(engine, container_id, ctx, lifecycle)


async def _cpu_meter(engine: Backend, container_id: str) -> CpuMeter | None:
    """The CPU meter of a container on this host (None when its cgroup is out of reach)."""
    data = await engine.inspect_container(container_id)
    pid = int(((data or {}).get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        return None
    return await anyio.to_thread.run_sync(open_cpu_meter, pid, container_id)


async def _ready_or_exit(
    instance: Instance, session: aiohttp.ClientSession, deadline: float
) -> bool:
    """Wait for /alive while watching the container: an early exit fails fast."""
    outcome: dict[str, Any] = {}

    async with anyio.create_task_group() as tg:

        async def poll() -> None:
            outcome["ready"] = await _wait_alive(session, instance.url, deadline)
            tg.cancel_scope.cancel()

        async def watch() -> None:
            outcome["exit"] = await instance.wait_exit()
            tg.cancel_scope.cancel()

        tg.start_soon(poll)
        tg.start_soon(watch)

    if "exit" in outcome and not outcome.get("ready"):
        info: ExitInfo = outcome["exit"]
        logs = await instance.engine.instance_logs(instance.handle.id)
        raise InstanceStartError(
            f"{instance.name} exited before it was ready: {info.reason}",
            exit_code=info.exit_code,
            logs=logs,
        )
    return bool(outcome.get("ready"))


async def _teardown(
    engine: Backend, container_id: str, ctx: InstanceContext, lifecycle: Lifecycle
) -> None:
    """The stop ladder: SIGTERM, grace, SIGKILL (the engine's stop), then remove."""
    if lifecycle.can(InstanceState.STOPPING):
        lifecycle.to(InstanceState.STOPPING)
    try:
        with anyio.fail_after(ctx.stop_grace_s + REMOVE_BOUND_S):
            await engine.stop_instance(container_id, ctx.stop_grace_s)
            if ctx.remove:
                await engine.remove_instance(container_id)
    except EngineUnreachable as exc:
        # Nothing to retry against: the deployment removes it once the engine
        # answers again (or `faaslab stop` / `gc` does).
        log.warning("instance.teardown_skipped", container=container_id[:12], error=str(exc))
    except (FaaslabError, TimeoutError) as exc:
        log.warning("instance.teardown_retry", container=container_id[:12], error=str(exc))
        try:
            with anyio.move_on_after(REMOVE_BOUND_S):
                await engine.remove_instance(container_id)
        except EngineUnreachable as again:
            log.warning("instance.teardown_skipped", container=container_id[:12], error=str(again))
    if lifecycle.can(InstanceState.STOPPED):
        lifecycle.to(InstanceState.STOPPED)
