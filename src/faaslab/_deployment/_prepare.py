"""Before any instance starts: function packages, their dependencies, SeBS inputs.

A plain function directory is mounted as it is. A SeBS benchmark directory
is first built into a package as SeBS builds it (``_sebs.build_package``, for
the function's language). Either way the language's dependency manifest
(``requirements.txt``, ``package.json``) is installed once for the runtime
image (cached, ``_runtime.install_dependencies``) and mounted read-only at
the language's packages mount (``/function/.python_packages``,
``/function/.node_packages``); a Python SeBS benchmark that lists the
``nosql`` module gets ``boto3`` added, as SeBS adds it. Each function's
image is its own, the deployment's, or its language's. Everything here that
can fail does so before the first container exists.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Protocol

import anyio
import msgspec

from .._backend import Backend
from .._runtime import LanguageRuntime, has_dependencies, install_dependencies, language_runtime
from .._sebs import (
    SebsBenchmark,
    add_module_requirements,
    build_package,
    is_sebs_benchmark,
    load_benchmark,
)
from .._spec import DeploymentSpec, FunctionSpec
from .._util import first_error

__all__ = ("PreparationProgress", "PreparedFunction", "image_of", "prepare_functions")


class PreparationProgress(Protocol):
    """Told what preparation is doing, for a progress display (the CLI's)."""

    def pip(self, function: str, line: str) -> None:
        """One line of pip's output while ``function``'s requirements install."""

    def uploaded(self, function: str, files: int, size: int) -> None:
        """``function``'s SeBS inputs uploaded so far: files and bytes."""



class PreparedFunction(msgspec.Struct, frozen=True):
    """What a function's containers run and mount."""

    code: str
    binds: list[str]
    #: The runtime image its instances run.
    image: str = ""
    #: The command that checks the function loads, run before any instance starts.
    load_check: list[str] | None = None


def image_of(spec: DeploymentSpec, function: FunctionSpec) -> str:
    """The runtime image of ``function``: its own, the deployment's, or its language's."""
    return function.image or spec.image or language_runtime(function.language).image


def _manifest_of(
    code: Path, benchmark: SebsBenchmark | None, runtime: LanguageRuntime
) -> Path | None:
    if benchmark is not None:
        if benchmark.language == "python":
            # build_package copied it into the package; the modules' packages
            # (boto3 for nosql) are added to that copy.
            return add_module_requirements(code, benchmark)
        if benchmark.package_manifest is None:
            return None
        # build_package copied it into the package under this name.
        return code / benchmark.package_manifest
    plain = code / runtime.manifest
    return plain if plain.is_file() else None


async def prepare_functions(
    engine: Backend,
    spec: DeploymentSpec,
    workdir: Path,
    progress: PreparationProgress | None = None,
) -> tuple[dict[str, PreparedFunction], dict[str, SebsBenchmark]]:
    """Build packages and install dependencies for every function, concurrently."""
    prepared: dict[str, PreparedFunction] = {}
    benchmarks: dict[str, SebsBenchmark] = {}

    async def one(function: FunctionSpec) -> None:
        runtime = language_runtime(function.language)
        image = image_of(spec, function)
        code = function.code_path
        benchmark = None
        if is_sebs_benchmark(code, function.language):
            benchmark = await anyio.to_thread.run_sync(
                lambda: load_benchmark(
                    code,
                    size=spec.sebs_size,
                    data_dir=spec.data_dir,
                    language=function.language,
                    language_version=function.language_version,
                )
            )
            package_dir = workdir / "packages" / function.name
            code = await anyio.to_thread.run_sync(
                lambda: build_package(
                    function.code_path,
                    package_dir,
                    language=function.language,
                    language_version=function.language_version,
                )
            )
            benchmarks[function.name] = benchmark
        binds: list[str] = []
        manifest = await anyio.to_thread.run_sync(
            lambda: _manifest_of(code, benchmark, runtime)
        )
        if manifest is not None and has_dependencies(runtime, manifest):
            say = partial(progress.pip, function.name) if progress is not None else None
            installed = await install_dependencies(
                engine, runtime, manifest, image=image, progress=say
            )
            binds.append(f"{installed}:{runtime.packages_mount}:ro")
        check = list(runtime.load_check) if runtime.load_check is not None else None
        prepared[function.name] = PreparedFunction(
            code=str(code), binds=binds, image=image, load_check=check
        )

    try:
        async with anyio.create_task_group() as tg:
            for function in spec.functions:
                tg.start_soon(one, function)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return prepared, benchmarks
