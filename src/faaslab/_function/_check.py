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
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import anyio
import structlog

from .._backend import Backend, Label, run_to_exit
from .._errors import InstanceStartError
from .._spec import FunctionSpec
from .._util import first_error
from ._actor import InstanceContext, container_config

__all__ = ("LoadCheck", "check_loads", "load_failure")

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


async def _check_one(engine: Backend, check: LoadCheck) -> None:
    spec, ctx, command = check
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


async def check_loads(engine: Backend, checks: Sequence[LoadCheck]) -> None:
    """Run every load check at once; the first failure is raised as InstanceStartError."""
    if not checks:
        return
    try:
        async with anyio.create_task_group() as tg:
            for check in checks:
                tg.start_soon(_check_one, engine, check)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
