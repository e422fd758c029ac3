"""SeBS's own commands, as SeBS spells them: ``local``, ``benchmark``, ``experiment``.

    faaslab local start BENCHMARK {test,small,large} OUTPUT --config CFG [...]
    faaslab local stop INPUT_JSON [OUTPUT_JSON=memory_stats.json]
    faaslab benchmark invoke BENCHMARK SIZE --config CFG --deployment local [...]
    faaslab experiment invoke perf-cost --config CFG --deployment local --output-dir D
    faaslab experiment process perf-cost --config CFG --deployment local --output-dir D

Every option of SeBS's ``sebs/cli.py`` is taken with its name and default.
Those that mean nothing on one machine (``--cache``, ``--update-code``,
``--architecture x64``, ...) are accepted and said to be ignored; what
cannot be done locally is refused in one line before anything starts.
``local start`` / ``stop`` are ``faaslab start`` / ``stop`` (the detached
supervisor, the same deployment file); ``benchmark invoke`` and perf-cost
run in this process (``_sebs_runs``).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from pathlib import Path

import anyio

from .._errors import SpecError
from .._logging import log_to_file, stderr_console
from .._runtime import language_runtime
from .._sebs import (
    INPUT_SIZES,
    SebsBenchmark,
    SebsConfig,
    benchmark_data_dir,
    benchmark_roots,
    check_experiment,
    find_benchmark,
    load_benchmark,
    load_config,
    process_perf_cost,
    result_config,
)
from .._spec import DeploymentSpec, FunctionSpec, StorageSpec
from .._storage import ACCESS_KEY_ENV, SECRET_KEY_ENV
from ._deployments import cmd_stop, start_detached
from ._progress import Column, PreparationBars, open_progress, print_table
from ._sebs_runs import PerfCostStep, batches_needed, invoke_benchmark, run_perf_cost
from ._sebs_tables import csv_summary_rows, execution_rows

__all__ = ("register",)

#: SeBS's choices for --language (faaslab refuses what it does not run, clearly).
SEBS_LANGUAGES = ("python", "nodejs", "java", "cpp")
#: Memory sampling for ``benchmark invoke`` and perf-cost (faaslab's option):
#: on, so that every call's ``memory_used`` is measured.
DEFAULT_RUN_INTERVAL_MS = 1.0
#: SeBS's commands take no deployment id; this names the deployments they make
#: ``<prefix><random>`` (a test run's, so that its leak check knows its own).
ID_PREFIX_ENV = "FAASLAB_ID_PREFIX"


def _note(text: str) -> None:
    print(f"faaslab: note: {text}", file=sys.stderr)


# -- options ------------------------------------------------------------------


def _simplified_common(parser: argparse.ArgumentParser) -> None:
    """SeBS's ``simplified_common_params``, plus faaslab's --benchmarks-root."""
    parser.add_argument("--config", required=True, help="SeBS experiment config (JSON)")
    parser.add_argument(
        "--output-dir", default=os.path.curdir, help="output directory for results (default .)"
    )
    parser.add_argument(
        "--output-file", default="out.log", help="log file name in --output-dir (default out.log)"
    )
    parser.add_argument("--cache", default=None, help="SeBS's cache directory (ignored locally)")
    parser.add_argument(
        "--verbose", action=argparse.BooleanOptionalAction, default=False, help="debug logs"
    )
    parser.add_argument(
        "--preserve-out",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep what is in --output-dir (faaslab never deletes it)",
    )
    parser.add_argument("--language", default=None, choices=SEBS_LANGUAGES)
    parser.add_argument("--language-version", default=None)
    parser.add_argument(
        "--benchmarks-root",
        default=None,
        metavar="DIR",
        help="a SeBS checkout to find BENCHMARK names in (after the current directory)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    """SeBS's ``common_params`` (deployment commands)."""
    for flag, what in (
        ("--update-code", "update function code (faaslab builds it afresh every time)"),
        ("--update-storage", "update benchmark inputs (faaslab uploads them every time)"),
        ("--container-deployment", "deploy as container images (AWS only)"),
    ):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=what)
    parser.add_argument("--deployment", default=None, help="platform: local (the only one here)")
    parser.add_argument("--architecture", default=None, choices=("x64", "arm64"))
    parser.add_argument("--resource-prefix", default=None, help="(cloud resources; ignored)")
    _simplified_common(parser)


def _storage_configuration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-configuration",
        action="append",
        default=None,
        metavar="JSON",
        help="storage as `sebs storage start` describes it (replaces deployment.local.storage)",
    )


def _measure_interval(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--measure-interval",
        type=float,
        default=default,
        metavar="MS",
        help=f"memory sampling interval in ms, -1 off (default {default:g})",
    )


# -- what every command checks ------------------------------------------------


def _native_architecture() -> str:
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x64"


def _load(args: argparse.Namespace, *, deployment: str | None = None) -> SebsConfig:
    """The config with the command line's overrides; every refusal before anything starts."""
    if args.language is not None:
        language_runtime(args.language)  # a language this build lacks, before its versions
    config = load_config(
        args.config,
        language=args.language,
        language_version=args.language_version,
        architecture=args.architecture,
        deployment=deployment if deployment is not None else getattr(args, "deployment", None),
        storage_configuration=getattr(args, "storage_configuration", None),
    )
    architecture = config.experiments.architecture
    native = _native_architecture()
    if architecture != native:
        raise SpecError(
            f"architecture {architecture}: faaslab runs containers natively on this {native} "
            f"machine and does not emulate {architecture}; use --architecture {native}"
        )
    if args.architecture is not None:
        _note(f"--architecture {architecture}: ignored (containers run natively on this machine)")
    if args.cache is not None:
        _note("--cache: ignored (faaslab caches installed requirements in its state directory)")
    if not args.preserve_out:
        _note("--no-preserve-out: ignored (faaslab never deletes an output directory)")
    for flag in ("update_code", "update_storage"):
        if getattr(args, flag, None) is not None:
            _note(f"--{flag.replace('_', '-')}: ignored (faaslab builds and uploads afresh)")
    if getattr(args, "container_deployment", None):
        raise SpecError(
            "--container-deployment: SeBS's local platform deploys code packages only"
        )
    if getattr(args, "resource_prefix", None) is not None:
        _note("--resource-prefix: ignored (no cloud resources locally)")
    _image(config)  # the language and version must run here
    return config


def _image(config: SebsConfig) -> str:
    """The runtime image of the config's language and version."""
    runtime = config.experiments.runtime
    language = language_runtime(runtime.language)
    built = language.image.rpartition(":")[2]
    if runtime.version != built:
        raise SpecError(
            f"{runtime.language} {runtime.version}: not available in this build of faaslab, "
            f"whose {runtime.language} runtime is {built} ({language.image}); set "
            f'experiments.runtime.version to "{built}" or pass --language-version {built}'
        )
    return language.image


def _benchmark(name: str, size: str, benchmarks_root: str | None) -> SebsBenchmark:
    directory = find_benchmark(name, benchmark_roots(benchmarks_root))
    return load_benchmark(directory, size=size, data_dir=benchmark_data_dir(directory))


def _storage(config: SebsConfig) -> StorageSpec:
    """``deployment.local.storage``: that store (its keys to the environment), else faaslab's."""
    store = config.storage.object if config.storage is not None else None
    if config.storage is not None and config.storage.nosql is not None:
        _note("deployment.local.storage.nosql: ignored (NoSQL is not in this build of faaslab)")
    if store is None:
        return StorageSpec()
    # External keys come from the environment (never from a spec file): this
    # process is the entry point, and the supervisor it spawns inherits them.
    os.environ[ACCESS_KEY_ENV] = store.access_key
    os.environ[SECRET_KEY_ENV] = store.secret_key
    return StorageSpec(
        kind="external", endpoint=f"http://{store.host_endpoint}", function_address=store.address
    )


def _spec(
    benchmark: SebsBenchmark,
    config: SebsConfig,
    *,
    instances: int,
    measure_interval: float,
    remove_containers: bool = True,
    memory_mb: int | None = None,
    timeout_s: float | None = None,
    name: str | None = None,
) -> DeploymentSpec:
    function = FunctionSpec(
        name=name or benchmark.name,
        code=str(benchmark.path),
        instances=instances,
        memory_mb=memory_mb or benchmark.memory_mb,
        timeout_s=timeout_s or benchmark.timeout_s,
    )
    prefix = os.environ.get(ID_PREFIX_ENV)
    return DeploymentSpec(
        functions=[function],
        deployment_id=f"{prefix}{secrets.token_hex(4)}" if prefix else None,
        measure_interval_ms=measure_interval,
        remove_containers=remove_containers,
        image=_image(config),
        storage=_storage(config),
        sebs_size=benchmark.size,
        data_dir=str(benchmark.data_dir) if benchmark.data_dir is not None else None,
    )


def _output_dir(args: argparse.Namespace) -> Path:
    """``--output-dir``, created, with the log going to ``--output-file`` in it too (as SeBS's)."""
    directory = Path(args.output_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        log_to_file(directory / args.output_file)
    except OSError as exc:
        raise SpecError(f"--output-dir {directory}: cannot write there: {exc.strerror}") from exc
    return directory


# -- local start / stop -------------------------------------------------------


def cmd_local_start(args: argparse.Namespace) -> int:
    config = _load(args, deployment="local")
    if args.deployments < 1:
        raise SpecError(f"--deployments {args.deployments}: must be >= 1")
    benchmark = _benchmark(args.benchmark, args.size, args.benchmarks_root)
    spec = _spec(
        benchmark,
        config,
        instances=args.deployments,
        measure_interval=args.measure_interval,
        remove_containers=args.remove_containers,
    )
    _output_dir(args)
    path = Path(args.output).absolute()
    started = time.monotonic()
    with stderr_status(f"starting {benchmark.name} ({args.deployments} instance(s))"):
        state = start_detached(spec, path)
    print_table(
        [Column("instance"), Column("url"), Column("container")],
        [[r.instance, r.url, r.instance_id[:12]] for r in state.functions],
    )
    print(
        f"deployment {state.id}: {len(state.functions)} instance(s) ready in "
        f"{time.monotonic() - started:.1f} s; saved to {path}",
        file=sys.stderr,
    )
    return 0


def stderr_status(text: str) -> AbstractContextManager[object]:
    """A spinner on the stderr console while a detached start runs (nothing off a terminal)."""
    console = stderr_console()
    return console.status(text) if console.is_terminal else nullcontext()


def cmd_local_stop(args: argparse.Namespace) -> int:
    return cmd_stop(argparse.Namespace(deployment=args.input_json, stats=args.output_json))


# -- benchmark invoke ---------------------------------------------------------


def cmd_benchmark_invoke(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.trigger == "library":
        raise SpecError(
            "--trigger library: SeBS's local platform has HTTP triggers only (a library "
            "trigger calls a cloud provider's SDK); use --trigger http"
        )
    if args.repetitions < 1:
        raise SpecError(f"--repetitions {args.repetitions}: must be >= 1")
    if args.image_tag_prefix is not None:
        _note("--image-tag-prefix: ignored (faaslab's images are built locally)")
    benchmark = _benchmark(args.benchmark, args.size, args.benchmarks_root)
    spec = _spec(
        benchmark,
        config,
        instances=1,
        measure_interval=args.measure_interval,
        memory_mb=args.memory,
        timeout_s=args.timeout,
        name=args.function_name,
    )
    output = _output_dir(args)
    with open_progress() as progress:
        task = progress.add_task(f"{spec.functions[0].name}: invocations", total=args.repetitions)
        run = anyio.run(
            partial(
                invoke_benchmark,
                spec,
                config=result_config(config),
                repetitions=args.repetitions,
                output_dir=output,
                check_outputs=args.validate,
                progress=lambda done: progress.update(task, completed=done),
                preparation=PreparationBars(progress),
            )
        )
    print_table(*execution_rows(run.results))
    print(f"results: {run.experiments_path}")
    if run.stats_path:
        print(f"memory statistics: {run.stats_path}")
    failed = sum(result.stats.failure for result in run.results)
    invalid = [v for v in run.verdicts if v.status in ("invalid", "error")]
    if args.validate:
        valid = sum(v.ok for v in run.verdicts)
        print(f"validation: {valid}/{len(run.verdicts)} valid")
        for verdict in invalid:
            print(f"  {verdict.status}: {verdict.reason}", file=sys.stderr)
    return 1 if failed or invalid else 0


# -- experiment invoke / process ----------------------------------------------


def cmd_experiment_invoke(args: argparse.Namespace) -> int:
    check_experiment(args.experiment)
    config = _load(args)
    settings = config.perf_cost()
    benchmark = _benchmark(settings.benchmark, settings.input_size, args.benchmarks_root)
    warm_pool = any(not t.enforces_cold_start for t in settings.experiments)
    instances = settings.concurrent_invocations if warm_pool else 1
    sizes: list[int | None] = list(settings.memory_sizes) or [None]
    specs = {
        memory: _spec(
            benchmark,
            config,
            instances=instances,
            measure_interval=args.measure_interval,
            memory_mb=memory,
        )
        for memory in sizes
    }
    output = _output_dir(args)
    with open_progress() as progress:
        tasks = {
            (memory, run_type): progress.add_task(
                f"{run_type.value} {memory or benchmark.memory_mb} MB",
                total=batches_needed(
                    run_type, settings.repetitions, settings.concurrent_invocations
                ),
            )
            for memory in sizes
            for run_type in settings.experiments
        }

        def advance(step: PerfCostStep) -> None:
            task = tasks[(step.memory_mb, step.run_type)]
            total = max(step.expected_batches, step.batches)
            description = (
                f"{step.run_type.value} {step.memory_mb or benchmark.memory_mb} MB: "
                f"{step.accepted}/{step.repetitions} results"
                + (f", {step.failures} failed" if step.failures else "")
            )
            progress.update(task, completed=step.batches, total=total, description=description)

        written = anyio.run(
            partial(
                run_perf_cost,
                settings,
                specs,
                config=result_config(config),
                output_dir=output,
                progress=advance,
                preparation=PreparationBars(progress),
            )
        )
    for path in written:
        print(f"wrote {path}")
    print(
        f"next: faaslab experiment process perf-cost --config {args.config} "
        f"--deployment local --output-dir {args.output_dir}"
    )
    return 0


def cmd_experiment_process(args: argparse.Namespace) -> int:
    check_experiment(args.experiment)
    _load(args)
    if args.extend_time_interval != -1:
        _note("--extend-time-interval: ignored (no cloud metrics to download locally)")
    csv_path = process_perf_cost(args.output_dir)
    print_table(*csv_summary_rows(csv_path))
    print(f"wrote {csv_path}")
    return 0


# -- the parser ---------------------------------------------------------------


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add SeBS's ``local``, ``benchmark`` and ``experiment`` groups."""
    local = commands.add_parser("local", help="SeBS's `local start|stop`")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    start = local_commands.add_parser(
        "start", help="start a benchmark's instances and storage (detached)"
    )
    start.add_argument("benchmark", metavar="BENCHMARK", help="a name or a directory")
    start.add_argument("size", choices=INPUT_SIZES, metavar="{test,small,large}")
    start.add_argument("output", metavar="OUTPUT", help="the deployment file to write")
    start.add_argument("--deployments", type=int, default=1, help="instances (default 1)")
    _storage_configuration(start)
    _measure_interval(start, -1)
    start.add_argument(
        "--remove-containers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="remove containers at stop (default: yes)",
    )
    start.add_argument("--architecture", default=None, choices=("x64", "arm64"))
    _simplified_common(start)
    start.set_defaults(handler=cmd_local_start)

    stop = local_commands.add_parser("stop", help="stop it and write memory statistics")
    stop.add_argument("input_json", metavar="INPUT_JSON")
    stop.add_argument("output_json", nargs="?", default="memory_stats.json", metavar="OUTPUT_JSON")
    stop.set_defaults(handler=cmd_local_stop)

    benchmark = commands.add_parser("benchmark", help="SeBS's `benchmark invoke`")
    benchmark_commands = benchmark.add_subparsers(
        dest="benchmark_command", required=True, metavar="COMMAND"
    )
    invoke = benchmark_commands.add_parser(
        "invoke", help="deploy, invoke N times, write experiments.json, stop"
    )
    invoke.add_argument("benchmark", metavar="BENCHMARK")
    invoke.add_argument("size", choices=INPUT_SIZES, metavar="{test,small,large}")
    invoke.add_argument("--repetitions", type=int, default=5, help="invocations (default 5)")
    invoke.add_argument("--trigger", choices=("library", "http"), default="http")
    invoke.add_argument("--memory", type=int, default=None, help="MB (default: the benchmark's)")
    invoke.add_argument("--timeout", type=int, default=None, help="s (default: the benchmark's)")
    invoke.add_argument("--function-name", default=None, help="the function's name")
    invoke.add_argument("--image-tag-prefix", default=None, help="(ignored locally)")
    invoke.add_argument(
        "--validate", action="store_true", help="check each output with validate_output"
    )
    _storage_configuration(invoke)
    _measure_interval(invoke, DEFAULT_RUN_INTERVAL_MS)
    _common(invoke)
    invoke.set_defaults(handler=cmd_benchmark_invoke)

    experiment = commands.add_parser("experiment", help="SeBS's `experiment invoke|process`")
    experiment_commands = experiment.add_subparsers(
        dest="experiment_command", required=True, metavar="COMMAND"
    )
    run = experiment_commands.add_parser("invoke", help="run an experiment (perf-cost)")
    run.add_argument("experiment", metavar="EXPERIMENT")
    _storage_configuration(run)
    _measure_interval(run, DEFAULT_RUN_INTERVAL_MS)
    _common(run)
    run.set_defaults(handler=cmd_experiment_invoke)
    process = experiment_commands.add_parser(
        "process", help="turn an experiment's results into result.csv"
    )
    process.add_argument("experiment", metavar="EXPERIMENT")
    process.add_argument("--extend-time-interval", type=int, default=-1)
    _common(process)
    process.set_defaults(handler=cmd_experiment_process)
