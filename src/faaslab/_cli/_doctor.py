"""`faaslab doctor`: one line per check, ok or FAIL with the fix."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio

from .._backend import Backend, Label, engine_endpoint, open_engine, run_to_exit
from .._errors import FaaslabError
from .._runtime import NODE_RUNTIME_IMAGE, RUNTIME_IMAGE
from .._sampling import default_address, find_memory_files, sampler_status
from ._images import image_statuses
from ._sampler import describe_status

__all__ = ("Check", "run_checks")

PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def run_checks(*, base: str | None = None) -> AsyncIterator[Check]:
    """Yield each check's outcome as soon as it is known."""
    endpoint = engine_endpoint()
    try:
        async with open_engine(endpoint) as engine:
            info = await engine.info()
            yield Check(
                "engine",
                True,
                f"{endpoint} (Docker {info.version}, API {info.api_version})",
            )
            yield Check(
                "cgroups",
                info.cgroup_version in ("1", "2"),
                f"cgroup v{info.cgroup_version}, driver {info.cgroup_driver}",
            )
            statuses = await image_statuses(engine, base=base)
            runtime_ready = any(s.name == RUNTIME_IMAGE and s.present for s in statuses)
            if runtime_ready:
                yield await _memory_file_check(engine)
            else:
                yield Check(
                    "memory file",
                    False,
                    "needs the runtime image to start a probe container: "
                    "run `python -m faaslab images build`",
                )
            if any(s.name == NODE_RUNTIME_IMAGE and s.present for s in statuses):
                yield await _nodejs_check(engine)
            for status in statuses:
                if status.current:
                    yield Check(f"image {status.name}", True, f"current (inputs {status.inputs})")
                elif status.present:
                    yield Check(
                        f"image {status.name}",
                        False,
                        "stale (its inputs changed): run `python -m faaslab images build`",
                    )
                else:
                    yield Check(
                        f"image {status.name}",
                        False,
                        "missing: run `python -m faaslab images build`",
                    )
    except FaaslabError as exc:
        yield Check("engine", False, str(exc))
    yield await _sampler_check()


async def _sampler_check() -> Check:
    """The host sampler: how it runs, if it does (it is started on first use)."""
    try:
        address = default_address()
        status = await sampler_status(address)
    except (FaaslabError, OSError, TimeoutError) as exc:
        return Check("sampler", False, f"{exc or type(exc).__name__}")
    return Check("sampler", True, describe_status(status, str(address)))


#: Loads what the Node.js image provides every function, and says which Node it is.
_NODE_PROBE = (
    "require('minio'); require('aws-sdk'); require('uuid');"
    "console.log(`Node.js ${process.version}; minio, aws-sdk, uuid load`)"
)


async def _nodejs_check(engine: Backend) -> Check:
    """Run the Node.js runtime image once: its Node and its global modules."""
    probe_id = f"doctor-{secrets.token_hex(4)}"
    config = {
        "Image": NODE_RUNTIME_IMAGE,
        "Entrypoint": ["node", "-e", _NODE_PROBE],
        "Labels": {Label.DEPLOYMENT: probe_id, Label.ROLE: "probe"},
        "HostConfig": {"NetworkMode": "none"},
    }
    try:
        result = await run_to_exit(
            engine, config, name=f"faaslab-{probe_id}", timeout_s=PROBE_TIMEOUT_S
        )
    except FaaslabError as exc:
        return Check("nodejs runtime", False, str(exc))
    last = result.tail[-1] if result.tail else "no output"
    ok = result.exit_code == 0
    detail = last if ok else f"{NODE_RUNTIME_IMAGE} failed (exit {result.exit_code}): {last}"
    return Check("nodejs runtime", ok, detail)


async def _memory_file_check(engine: Backend) -> Check:
    """Start a tiny container and find its memory file from /proc/<pid>/cgroup."""
    probe_id = f"doctor-{secrets.token_hex(4)}"
    config = {
        "Image": RUNTIME_IMAGE,
        "Entrypoint": ["sleep", "60"],
        "Labels": {Label.DEPLOYMENT: probe_id, Label.ROLE: "probe"},
        "HostConfig": {"NetworkMode": "none", "AutoRemove": False},
    }
    container_id = ""
    try:
        with anyio.fail_after(PROBE_TIMEOUT_S):
            container_id = await engine.create_container(config, name=f"faaslab-{probe_id}")
            await engine.start_container(container_id)
            data = await engine.inspect_container(container_id)
            pid = int((data or {}).get("State", {}).get("Pid", 0))
            if pid <= 0:
                return Check("memory file", False, "the probe container did not run")
            files = await anyio.to_thread.run_sync(
                lambda: find_memory_files(pid, container_id=container_id)
            )
            value = int((await anyio.Path(files.usage).read_bytes()).split()[0])
            peak = files.peak or "no peak file"
            return Check(
                "memory file",
                True,
                f"{files.usage} ({files.layout}, {value >> 10} KiB now; peak: {peak})",
            )
    except (FaaslabError, OSError, TimeoutError) as exc:
        return Check(
            "memory file",
            False,
            f"{exc or type(exc).__name__}: sampling falls back to the Docker stats API "
            "(1 s resolution)",
        )
    finally:
        if container_id:
            with anyio.CancelScope(shield=True):
                await engine.remove_container(container_id)
