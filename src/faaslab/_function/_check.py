"""The load check: a function loaded once in its runtime before any instance starts.

For languages whose handler the host cannot find by reading the code
(Node.js: ``exports.handler`` may be set any way JavaScript allows), the
runtime loads the function exactly as an instance would and exits: 0 when it
exports a handler, 1 with a one-line reason when it does not or cannot load
(a syntax error, a missing module). The check container is an instance's
container (same image, code, dependencies, environment, network and limits)
whose command is the language's check instead of the server; it publishes no
port and is removed whatever happens. Which command, if any, comes from the
language runtime: this module knows no language.

A check costs a container start (0.5-1 s here), so a passed check is
remembered (``<state dir>/load-checks/<key>``), keyed by what decides whether
the function loads: the image id, the command, the code's content, the
mounted dependencies (their cache directories are named by content), the
function's own environment and memory limit. The storage credentials, fresh
for every deployment, are not part of it. A failure is never remembered.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import anyio
import structlog

from .._backend import Backend, Label, run_to_exit
from .._errors import InstanceStartError
from .._spec import FunctionSpec
from .._util import first_error, state_dir
from ._actor import InstanceContext, container_config

__all__ = ("LoadCheck", "check_loads", "default_verdicts", "load_failure", "verdict_key")

log = structlog.get_logger()

#: (the function, its instances' context, the check command).
LoadCheck = tuple[FunctionSpec, InstanceContext, Sequence[str]]
#: The runtime's one-line reason starts so (runtimes/nodejs/server.js).
_REASON_PREFIX = "faaslab: "


def load_failure(tail: Sequence[str]) -> str:
    """The one line that says why a function did not load, from the check's output."""
    lines = [line.strip() for line in tail if line.strip()]
    for line in lines:
        if line.startswith(_REASON_PREFIX + "cannot load"):
            return line.removeprefix(_REASON_PREFIX)
    return lines[-1] if lines else "it printed nothing"


def _code_digest(root: Path) -> str:
    """The content of a code directory: every file's relative path and bytes."""
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            relative = str(path.relative_to(root)).encode()
            digest.update(len(relative).to_bytes(8, "little") + relative)
            digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


def verdict_key(check: LoadCheck, image_id: str) -> str:
    """What decides whether the function loads (see the module docstring)."""
    spec, ctx, command = check
    parts = {
        "image": image_id,
        "command": list(command),
        "code": _code_digest(Path(ctx.code or spec.code_path)),
        "binds": ctx.binds,
        "env": spec.env,
        "memory_mb": spec.memory_mb,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


async def _check_one(engine: Backend, check: LoadCheck, verdicts: Path | None) -> None:
    spec, ctx, command = check
    passed = None
    if verdicts is not None:
        image_id = await engine.image_id(ctx.image) or ""
        key = await anyio.to_thread.run_sync(verdict_key, check, image_id)
        passed = verdicts / key
        if passed.is_file():
            log.debug("function.load_check_cached", function=spec.name)
            return
    name = f"{spec.name}-check"
    config = container_config(spec, name, ctx, 0)
    config["Entrypoint"] = list(command)
    config["Cmd"] = []
    config["Labels"] = {**config["Labels"], Label.ROLE: "check"}
    del config["ExposedPorts"], config["HostConfig"]["PortBindings"]
    result = await run_to_exit(
        engine,
        config,
        name=f"faaslab-{ctx.deployment_id}-{name}-{secrets.token_hex(2)}",
        timeout_s=ctx.start_timeout_s,
    )
    if result.exit_code is None:
        raise InstanceStartError(
            f"{spec.name}: loading the function did not finish within {ctx.start_timeout_s:g} s"
        )
    if result.exit_code != 0:
        log.debug("function.load_failed", function=spec.name, output=result.output)
        raise InstanceStartError(
            f"{spec.name}: {load_failure(result.tail)}", exit_code=result.exit_code
        )
    log.debug("function.load_checked", function=spec.name)
    if passed is not None:
        passed.parent.mkdir(parents=True, exist_ok=True)
        passed.write_text(json.dumps({"function": spec.name, "image": ctx.image}))


def default_verdicts() -> Path:
    return state_dir() / "load-checks"


async def check_loads(
    engine: Backend, checks: Sequence[LoadCheck], *, verdicts: Path | None = None
) -> None:
    """Run every load check at once; the first failure is raised as InstanceStartError.

    ``verdicts`` is where passed checks are remembered (None: nowhere, always check).
    """
    if not checks:
        return
    try:
        async with anyio.create_task_group() as tg:
            for check in checks:
                tg.start_soon(_check_one, engine, check, verdicts)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
