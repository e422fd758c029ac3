"""The per-language seam without an engine: specs, SeBS packages, npm settings, image recipes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import msgspec
import pytest
import structlog.testing

from faaslab._errors import SpecError
from faaslab._function import load_failure
from faaslab._runtime import LANGUAGES, NODE_RUNTIME_IMAGE, NPM_IMAGE, RUNTIME_IMAGE
from faaslab._runtime._debian import _mmdebstrap_command
from faaslab._runtime._language import has_dependencies, language_runtime
from faaslab._runtime._nodejs_images import _prune, _runtime_dockerfile
from faaslab._runtime._npm import _npm_container
from faaslab._runtime._npmconfig import (
    CONTAINER_GLOBALCONFIG,
    CONTAINER_USERCONFIG,
    NPM_CA_BUNDLE_ENV,
    npm_settings,
)
from faaslab._runtime._packages import needs_install, read_package_json
from faaslab._runtime._pipconfig import CONTAINER_CA
from faaslab._runtime._python_images import DEBIAN_PACKAGES, RUNTIME_REQUIREMENTS
from faaslab._sebs._benchmark import (
    _validator_arguments,
    build_package,
    is_sebs_benchmark,
    load_benchmark,
)
from faaslab._spec import FUNCTION_LANGUAGES, DeploymentSpec, FunctionSpec, load_deployment_spec

DATA = Path(__file__).parent.parent / "data" / "sebs"


def node_function(tmp_path: Path, source: str = "exports.handler = async (e) => e;\n") -> Path:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "function.js").write_text(source)
    return code


# -- the spec ------------------------------------------------------------------


def test_the_runtime_table_and_the_spec_name_the_same_languages() -> None:
    assert set(LANGUAGES) == set(FUNCTION_LANGUAGES) == {"python", "nodejs"}
    for name, runtime in LANGUAGES.items():
        assert runtime.entry_file == FUNCTION_LANGUAGES[name].entry_file
        assert runtime.versions == FUNCTION_LANGUAGES[name].versions
    assert language_runtime("nodejs").image == NODE_RUNTIME_IMAGE
    assert language_runtime("nodejs").installer_image == NPM_IMAGE
    assert language_runtime("python").image == RUNTIME_IMAGE
    with pytest.raises(SpecError, match="faaslab runs: nodejs, python"):
        language_runtime("ruby")


def test_a_nodejs_function_spec(tmp_path: Path) -> None:
    code = node_function(tmp_path)
    spec = FunctionSpec(name="fn", code=str(code), language="nodejs", language_version="18")
    assert spec.language == "nodejs"
    assert FunctionSpec(name="fn", code=str(code), language="nodejs", language_version="18.20")
    # No handler check on the host: the load check finds a missing export at start.
    (code / "function.js").write_text("exports.other = 1;\n")
    FunctionSpec(name="fn", code=str(code), language="nodejs")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"language": "ruby"}, r"language: 'ruby' for 'fn' is not supported; faaslab runs nodejs"),
        ({"language_version": "20"}, r"language_version: '20' for 'fn'; .* nodejs runtime is 18"),
        ({"language_version": "180"}, r"language_version: '180'"),
        ({"language": "python"}, r"has no function\.py \(a python function needs one\)"),
    ],
)
def test_bad_languages_and_versions(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    code = node_function(tmp_path)
    fields = {"name": "fn", "code": str(code), "language": "nodejs", **changes}
    with pytest.raises(SpecError, match=message):
        FunctionSpec(**fields)  # type: ignore[arg-type]


def test_a_python_directory_is_not_a_nodejs_function(tmp_path: Path) -> None:
    code = tmp_path / "py"
    code.mkdir()
    (code / "function.py").write_text("def handler(event):\n    return event\n")
    with pytest.raises(SpecError, match=r"has no function\.js \(a nodejs function needs one\)"):
        FunctionSpec(name="py", code=str(code), language="nodejs")


def test_sebs_directories_per_language() -> None:
    FunctionSpec(name="sleep", code=str(DATA / "010.sleep"), language="nodejs")
    FunctionSpec(name="sleep", code=str(DATA / "010.sleep"), language="python")
    with pytest.raises(SpecError, match=r"has no python/function\.py"):
        FunctionSpec(name="thumb", code=str(DATA / "311.compression"))
    assert is_sebs_benchmark(DATA / "311.compression")
    assert is_sebs_benchmark(DATA / "110.dynamic-html", "nodejs")
    assert not is_sebs_benchmark(DATA / "311.compression", "python")


def test_language_in_toml_and_json_alike(tmp_path: Path) -> None:
    node_function(tmp_path)
    (tmp_path / "d.toml").write_text(
        'image = "faaslab/custom:1"\n'
        '[[functions]]\nname = "fn"\ncode = "fn"\nlanguage = "nodejs"\nlanguage_version = "18"\n'
    )
    (tmp_path / "d.json").write_text(
        json.dumps({"functions": [{"name": "fn", "code": "fn", "language": "nodejs"}]})
    )
    toml = load_deployment_spec(tmp_path / "d.toml")
    assert toml.functions[0].language == "nodejs"
    assert toml.image == "faaslab/custom:1"
    assert load_deployment_spec(tmp_path / "d.json").functions[0].language == "nodejs"
    (tmp_path / "bad.json").write_text(
        json.dumps({"functions": [{"name": "fn", "code": "fn", "language": "cobol"}]})
    )
    with pytest.raises(SpecError, match="'cobol' for 'fn' is not supported"):
        load_deployment_spec(tmp_path / "bad.json")


def test_each_function_runs_its_languages_image_unless_told(tmp_path: Path) -> None:
    from faaslab._deployment._prepare import image_of

    node = FunctionSpec(name="n", code=str(node_function(tmp_path)), language="nodejs")
    python = FunctionSpec(name="p", code=str(DATA / "910.requirement"))
    spec = DeploymentSpec(functions=[node, python])
    assert image_of(spec, node) == NODE_RUNTIME_IMAGE
    assert image_of(spec, python) == RUNTIME_IMAGE
    custom = DeploymentSpec(functions=[node, python], image="faaslab/custom:1")
    assert image_of(custom, python) == "faaslab/custom:1"
    own = FunctionSpec(name="o", code=str(DATA / "910.requirement"), image="faaslab/own:2")
    assert image_of(custom, own) == "faaslab/own:2"


# -- SeBS packages -------------------------------------------------------------


def test_a_nodejs_benchmark_is_packaged_as_sebs_packages_it(tmp_path: Path) -> None:
    benchmark = load_benchmark(
        DATA / "210.thumbnailer", data_dir=DATA / "benchmarks-data" / "210.thumbnailer",
        language="nodejs",
    )  # fmt: skip
    assert benchmark.language == "nodejs"
    assert benchmark.language_version == "18"
    assert benchmark.requirements == DATA / "210.thumbnailer" / "nodejs" / "package.json.18"
    assert benchmark.package_manifest == "package.json"
    package = build_package(DATA / "210.thumbnailer", tmp_path / "pkg", language="nodejs")
    names = sorted(p.name for p in package.iterdir() if not p.name.startswith("."))
    assert names == ["function.js", "package.json"]  # *.js and package.json, as copy_code
    # The Node major's variant is copied over package.json: sharp 0.33 installs from the registry.
    assert read_package_json(package / "package.json")["dependencies"] == {"sharp": "^0.33"}


def test_sebs_copyright_header_is_dropped_from_package_json(tmp_path: Path) -> None:
    # SeBS's current package.json files start with "# Copyright ...": not JSON.
    copied = tmp_path / "210.thumbnailer"
    shutil.copytree(DATA / "210.thumbnailer", copied)
    header = "# Copyright 2020-2025 ETH Zurich and the SeBS authors. All rights reserved.\n"
    for name in ("package.json", "package.json.18"):
        manifest = copied / "nodejs" / name
        manifest.write_text(header + manifest.read_text())
    package = build_package(copied, tmp_path / "pkg", language="nodejs")
    assert read_package_json(package / "package.json")["dependencies"] == {"sharp": "^0.33"}
    # Without the variant, package.json itself is cleaned the same way.
    (copied / "nodejs" / "package.json.18").unlink()
    plain = build_package(copied, tmp_path / "plain", language="nodejs")
    assert read_package_json(plain / "package.json")["dependencies"] == {"sharp": "^0.25"}
    # Anything else that is not JSON is left for npm's (and faaslab's) one-line error.
    (copied / "nodejs" / "package.json").write_text('{"dependencies": ')
    broken = build_package(copied, tmp_path / "broken", language="nodejs")
    with pytest.raises(SpecError, match="not valid JSON"):
        read_package_json(broken / "package.json")


def test_a_minor_version_picks_the_majors_variant(tmp_path: Path) -> None:
    runtime = language_runtime("nodejs")
    assert runtime.manifest_variant("18.20") == runtime.manifest_variant(None) == "package.json.18"
    assert language_runtime("python").manifest_variant("3.11.4") == "requirements.txt.3.11"
    benchmark = load_benchmark(
        DATA / "210.thumbnailer", data_dir=DATA / "benchmarks-data" / "210.thumbnailer",
        language="nodejs", language_version="18.20",
    )  # fmt: skip
    assert (benchmark.language_version, benchmark.requirements.name) == ("18", "package.json.18")
    package = build_package(
        DATA / "210.thumbnailer", tmp_path / "pkg", language="nodejs", language_version="18.20"
    )
    assert read_package_json(package / "package.json")["dependencies"] == {"sharp": "^0.33"}


def test_no_variant_for_the_version_keeps_package_json(tmp_path: Path) -> None:
    benchmark = load_benchmark(DATA / "110.dynamic-html", language="nodejs")
    assert benchmark.requirements == DATA / "110.dynamic-html" / "nodejs" / "package.json"
    package = build_package(DATA / "110.dynamic-html", tmp_path / "pkg", language="nodejs")
    # init.sh of nodejs/ copied the templates, as SeBS runs it.
    assert (package / "templates" / "template.html").is_file()
    assert read_package_json(package / "package.json")["dependencies"] == {"mustache": "^3.2.1"}


def test_a_python_benchmark_picks_requirements_for_its_version(tmp_path: Path) -> None:
    benchmark = load_benchmark(DATA / "501.graph-pagerank")
    assert benchmark.package_manifest == "requirements.txt.3.11"
    package = build_package(DATA / "501.graph-pagerank", tmp_path / "pkg")
    assert (package / "requirements.txt.3.11").read_text() == "igraph==0.11.4\n"


def test_a_benchmark_not_in_the_language_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"not a SeBS benchmark directory in python"):
        load_benchmark(DATA / "311.compression")
    copied = tmp_path / "311.compression"
    shutil.copytree(DATA / "311.compression", copied)
    (copied / "python").mkdir()
    (copied / "python" / "function.py").write_text("def handler(event):\n    return {}\n")
    with pytest.raises(SpecError, match=r"not available in python"):
        load_benchmark(copied)


def test_validators_get_the_arguments_they_name() -> None:
    values = {
        "data_dir": "/data",
        "input_config": {"n": 1},
        "output": {"result": 1},
        "language": "nodejs",
        "storage": None,
    }

    def newest(data_dir, input_config, output, language, storage=None):  # type: ignore[no-untyped-def]
        pass

    def four(input_config, output, language, storage=None):  # type: ignore[no-untyped-def]
        pass

    def two(input_config: dict[str, int], output: dict[str, int]) -> bool:
        return True

    def other(a, b, c, d, e):  # type: ignore[no-untyped-def]
        pass

    everything = list(values.values())
    assert _validator_arguments(newest, **values) == everything
    assert _validator_arguments(four, **values) == [{"n": 1}, {"result": 1}, "nodejs", None]
    assert _validator_arguments(two, **values) == [{"n": 1}, {"result": 1}]
    assert _validator_arguments(other, **values) == everything


# -- dependencies ----------------------------------------------------------------


def test_package_json_reading(tmp_path: Path) -> None:
    manifest = tmp_path / "package.json"
    manifest.write_text('{"dependencies": {}}')
    assert not needs_install(read_package_json(manifest))
    assert not has_dependencies(language_runtime("nodejs"), manifest)
    manifest.write_text('{"optionalDependencies": {"x": "1"}}')
    assert has_dependencies(language_runtime("nodejs"), manifest)
    manifest.write_text("# a comment\n{}")
    with pytest.raises(SpecError, match=r"not valid JSON .*npm cannot read it"):
        read_package_json(manifest)
    manifest.write_text("[1]")
    with pytest.raises(SpecError, match="must be a JSON object, not list"):
        read_package_json(manifest)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing\n\n")
    assert not has_dependencies(language_runtime("python"), requirements)


def test_npm_gets_the_hosts_files_env_and_ca(tmp_path: Path) -> None:
    user = tmp_path / "user.npmrc"
    user.write_text("//registry.example/:_authToken=secret\n")
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    global_rc = tmp_path / "global.npmrc"
    global_rc.write_text(f"cafile={bundle}\n")
    environ = {
        "HOME": str(tmp_path),
        "NPM_CONFIG_USERCONFIG": str(user),
        "npm_config_registry": "https://registry.example/",
        "npm_config_cache": "/host/cache",  # faaslab decides these in the container
        "NPM_CONFIG_PREFIX": "/host/prefix",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    settings = npm_settings({"globalconfig": str(global_rc)}, environ)
    assert settings.userconfig == str(user)
    assert settings.globalconfig == str(global_rc)
    assert settings.options == {"npm_config_registry": "https://registry.example/"}
    assert settings.proxies == {"HTTPS_PROXY": "http://proxy:3128"}
    # Neither npm (no answer here) nor the user file names a cafile; the global one does.
    assert settings.ca_bundle == str(bundle)
    env = settings.env()
    assert env["NPM_CONFIG_USERCONFIG"] == CONTAINER_USERCONFIG
    assert env["NPM_CONFIG_GLOBALCONFIG"] == CONTAINER_GLOBALCONFIG
    assert env["NPM_CONFIG_CAFILE"] == env["NODE_EXTRA_CA_CERTS"] == CONTAINER_CA
    assert "secret" not in json.dumps(env)  # tokens stay in the mounted file
    assert sorted(settings.binds()) == sorted(
        [
            f"{user}:{CONTAINER_USERCONFIG}:ro",
            f"{global_rc}:{CONTAINER_GLOBALCONFIG}:ro",
            f"{bundle}:{CONTAINER_CA}:ro",
        ]
    )
    # What decides the install: the options and the files, not the CA or the proxies.
    other_ca = npm_settings(
        {"globalconfig": str(global_rc)}, {**environ, NPM_CA_BUNDLE_ENV: str(bundle)}
    )
    assert other_ca.key() == settings.key()
    user.write_text("registry=https://other.example/\n")
    assert npm_settings({"globalconfig": str(global_rc)}, environ).key() != settings.key()

    assert npm_settings({}, {**environ, NPM_CA_BUNDLE_ENV: "none"}).ca_bundle is None
    with pytest.raises(SpecError, match=NPM_CA_BUNDLE_ENV):
        npm_settings({}, {**environ, NPM_CA_BUNDLE_ENV: str(tmp_path / "missing.crt")})


def test_without_npmrc_files_npm_reads_none_of_the_host(tmp_path: Path) -> None:
    settings = npm_settings({}, {"HOME": str(tmp_path), "NPM_CONFIG_GLOBALCONFIG": "/nonexistent"})
    assert settings.userconfig is None
    assert settings.globalconfig is None
    env = settings.env()
    assert env["NPM_CONFIG_USERCONFIG"] == env["NPM_CONFIG_GLOBALCONFIG"] == "/dev/null"


def test_a_loopback_registry_is_warned_about(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        npm_settings({"registry": "http://127.0.0.1:4873/"}, {"HOME": str(tmp_path)})
    assert [e["event"] for e in logs] == ["npm.loopback_unreachable"]


def test_the_npm_container_is_unprivileged(tmp_path: Path) -> None:
    settings = npm_settings({}, {"HOME": str(tmp_path)})
    body = _npm_container(tmp_path, NPM_IMAGE, "k" * 32, settings, "npm")
    assert body["Entrypoint"] == ["npm"]
    assert body["Cmd"][:2] == ["install", "--omit=dev"]
    host = body["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["Privileged"] is False
    assert host["ReadonlyRootfs"] is True
    assert host["Memory"] == host["MemorySwap"] > 0
    assert host["PidsLimit"] > 0
    assert host["Tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,size=1024m")  # npm's HOME
    assert body["Healthcheck"]["Test"][0] == "CMD"
    assert "NetworkMode" not in host  # run_to_exit gives it a network of its own
    assert f"{tmp_path}:/faaslab/target:rw" in host["Binds"]
    assert body["User"].count(":") == 1


def test_the_load_checks_one_line() -> None:
    tail = [
        "faaslab: cannot load the function in /function/function: TypeError: "
        "/function/function/function.js exports no callable `handler(event)`",
        "TypeError: /function/function/function.js exports no callable `handler(event)`",
        "    at loadHandler (/opt/faaslab/server.js:114:11)",
    ]
    assert load_failure(tail) == tail[0].removeprefix("faaslab: ")
    assert load_failure(["", "Killed", ""]) == "Killed"
    assert load_failure([]) == "it printed nothing"


# -- image recipes -------------------------------------------------------------


def test_the_python_base_carries_what_python_slim_carries() -> None:
    for package in ("libstdc++6", "libgcc-s1", "zlib1g", "libssl3", "libffi8", "libexpat1"):
        assert package in DEBIAN_PACKAGES
    for package in ("ca-certificates", "netbase", "tzdata"):  # python:3.11-slim's own
        assert package in DEBIAN_PACKAGES
    assert {r.split("==")[0] for r in RUNTIME_REQUIREMENTS} == {"minio", "cffi"}


def test_root_filesystems_are_slim_and_current(tmp_path: Path) -> None:
    command = _mmdebstrap_command("mmdebstrap", ["nodejs"], tmp_path / "out.tar")
    assert "--variant=essential" in command
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in command
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in command
    assert any("bookworm-security" in part for part in command)
    assert "--include=nodejs" in command


def test_the_nodejs_runtime_image_recipe(tmp_path: Path) -> None:
    dockerfile = _runtime_dockerfile()
    assert 'ENTRYPOINT ["node", "/opt/faaslab/server.js"]' in dockerfile
    assert "FAASLAB_NODE_GLOBAL=/opt/faaslab/node_modules" in dockerfile
    modules = tmp_path / "node_modules"
    (modules / "aws-sdk" / "dist").mkdir(parents=True)
    (modules / "aws-sdk" / "dist" / "aws-sdk.js").write_text("x" * 10)
    (modules / "aws-sdk" / "clients").mkdir()
    (modules / "aws-sdk" / "clients" / "s3.d.ts").write_text("y" * 5)
    (modules / "aws-sdk" / "clients" / "s3.js").write_text("z")
    assert _prune(modules) == 15
    assert [p.name for p in (modules / "aws-sdk").rglob("*") if p.is_file()] == ["s3.js"]


@pytest.mark.anyio
async def test_concurrent_installs_of_one_entry_fill_it_once(tmp_path: Path) -> None:
    from faaslab._runtime._cache import fill_entry

    fills: list[Path] = []

    async def fill(staging: Path) -> None:
        fills.append(staging)
        # Likely the others arrive meanwhile; either way one fill: later calls find it.
        await anyio.sleep(0.05)
        (staging / "done").write_text("1")

    results: list[Path] = []

    async def one() -> None:
        results.append(await fill_entry(tmp_path, "k" * 32, ".marker", {}, fill))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert len(fills) == 1
    assert results == [tmp_path / ("k" * 32)] * 3
    assert (results[0] / ".marker").is_file()


def test_a_passed_load_check_is_remembered_by_what_decides_it(tmp_path: Path) -> None:
    from faaslab._function import InstanceContext
    from faaslab._function._check import verdict_key

    code = node_function(tmp_path)
    spec = FunctionSpec(name="fn", code=str(code), language="nodejs")
    ctx = InstanceContext(
        deployment_id="d1", network="n1", image=NODE_RUNTIME_IMAGE, start_timeout_s=30,
        stop_grace_s=1, remove=True, env={"MINIO_SECRET_KEY": "one"},
    )  # fmt: skip
    command = ("node", "/opt/faaslab/server.js", "--check")
    key = verdict_key((spec, ctx, command), "sha256:a")
    # Another deployment (id, network, fresh credentials): the same verdict.
    other = msgspec.structs.replace(
        ctx, deployment_id="d2", network="n2", env={"MINIO_SECRET_KEY": "two"}
    )
    assert verdict_key((spec, other, command), "sha256:a") == key
    # Another image, other code, other dependencies, another environment: checked again.
    assert verdict_key((spec, ctx, command), "sha256:b") != key
    with_deps = msgspec.structs.replace(ctx, binds=["/cache/x:/function/.node_packages:ro"])
    assert verdict_key((spec, with_deps, command), "sha256:a") != key
    env_spec = FunctionSpec(name="fn", code=str(code), language="nodejs", env={"A": "1"})
    assert verdict_key((env_spec, ctx, command), "sha256:a") != key
    (code / "function.js").write_text("exports.handler = async () => 2;\n")
    assert verdict_key((spec, ctx, command), "sha256:a") != key


def test_start_and_up_take_sebs_language_flags() -> None:
    from faaslab._cli._deployments import spec_from_args
    from faaslab._cli._main import _parser

    for command in ("start", "up"):
        args = _parser().parse_args(
            [command, str(DATA / "010.sleep"), "--language", "nodejs", "--language-version", "18",
             "-o", "out.json"]
        )  # fmt: skip
        spec = spec_from_args(args)
        function = spec.functions[0]
        assert (function.language, function.language_version) == ("nodejs", "18")
        # SeBS's config.json gives the limits; no image named: each language's own.
        assert (function.memory_mb, function.timeout_s) == (128, 120.0)
        assert spec.image is None
    default = spec_from_args(_parser().parse_args(["up", str(DATA / "910.requirement")]))
    assert default.functions[0].language == "python"
    with pytest.raises(SpecError, match="faaslab runs: nodejs, python"):
        spec_from_args(
            _parser().parse_args(["up", str(DATA / "010.sleep"), "--language", "java"])
        )
