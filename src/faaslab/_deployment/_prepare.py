"""Before any instance starts: function packages, their requirements, SeBS inputs.

A plain function directory is mounted as it is. A SeBS benchmark directory
is first built into a package as SeBS builds it (``_sebs.build_package``).
Either way a ``requirements.txt`` is installed once for the runtime image
(cached, ``_requirements``) and mounted read-only at
``/function/.python_packages`` (a SeBS benchmark that lists the ``nosql``
module gets ``boto3`` added, as SeBS adds it). Everything here that can fail
does so before the first container exists.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Protocol

import anyio
import msgspec

from .._backend import Backend
from .._runtime import LanguageRuntime, install_requirements, language_runtime
from .._sebs import (
    SebsBenchmark,
    add_module_requirements,
    build_package,
    is_sebs_benchmark,
    load_benchmark,
)
from .._spec import DeploymentSpec, FunctionSpec
from .._util import first_error

__all__ = ("PreparationProgress", "PreparedFunction", "prepare_functions")


class PreparationProgress(Protocol):
    """Told what preparation is doing, for a progress display (the CLI's)."""

    def pip(self, function: str, line: str) -> None:
        """One line of pip's output while ``function``'s requirements install."""

    def uploaded(self, function: str, files: int, size: int) -> None:
        """``function``'s SeBS inputs uploaded so far: files and bytes."""



class PreparedFunction(msgspec.Struct, frozen=True):
    """What a function's containers mount."""

    code: str
    binds: list[str]


def _requirements_of(
    code: Path, benchmark: SebsBenchmark | None, runtime: LanguageRuntime
) -> Path | None:
    if benchmark is not None:
        # build_package copied it into the package under the same name; the
        # modules' packages (boto3 for nosql) are added to that copy.
        return add_module_requirements(code, benchmark)
    plain = code / runtime.manifest
    return plain if plain.is_file() else None


async def prepare_functions(
    engine: Backend,
    spec: DeploymentSpec,
    workdir: Path,
    progress: PreparationProgress | None = None,
) -> tuple[dict[str, PreparedFunction], dict[str, SebsBenchmark]]:
    """Build packages and install requirements for every function, concurrently."""
    prepared: dict[str, PreparedFunction] = {}
    benchmarks: dict[str, SebsBenchmark] = {}

    async def one(function: FunctionSpec) -> None:
        code = function.code_path
        benchmark = None
        if is_sebs_benchmark(code):
            benchmark = await anyio.to_thread.run_sync(
                lambda: load_benchmark(code, size=spec.sebs_size, data_dir=spec.data_dir)
            )
            package_dir = workdir / "packages" / function.name
            code = await anyio.to_thread.run_sync(lambda: build_package(code, package_dir))
            benchmarks[function.name] = benchmark
        runtime = language_runtime("python")
        binds: list[str] = []
        requirements = await anyio.to_thread.run_sync(
            lambda: _requirements_of(code, benchmark, runtime)
        )
        if requirements is not None and requirements.stat().st_size > 0:
            say = partial(progress.pip, function.name) if progress is not None else None
            installed = await install_requirements(
                engine, requirements, image=spec.image, progress=say
            )
            binds.append(f"{installed}:{runtime.packages_mount}:ro")
        prepared[function.name] = PreparedFunction(code=str(code), binds=binds)

    try:
        async with anyio.create_task_group() as tg:
            for function in spec.functions:
                tg.start_soon(one, function)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return prepared, benchmarks
