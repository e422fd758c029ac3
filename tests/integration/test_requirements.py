"""Requirements installed by pip inside the runtime image, cached, and used by a function."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from faaslab._backend import Backend, Label
from faaslab._errors import ImageMissing, SpecError
from faaslab._function._actor import InstanceContext, open_instance
from faaslab._runtime import RUNTIME_IMAGE
from faaslab._runtime._requirements import (
    CA_BUNDLE_ENV,
    CONTAINER_CA,
    RequirementsError,
    install_requirements,
    parse_pip_config_list,
    pip_settings,
)
from faaslab._spec import FunctionSpec

pytestmark = pytest.mark.integration

# `six` is on this machine's package index (checked with `pip download --no-deps six`).
SIX_FUNCTION = """
import six

def handler(event):
    return {"six": six.__version__, "from": six.__file__}
"""


async def pip_containers(engine: Backend) -> set[str]:
    return {c["Id"] for c in await engine.containers_labeled(f"{Label.ROLE}=pip")}


# -- the host's pip configuration (no engine) ---------------------------------

PIP_CONFIG_LIST = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.cert='/somewhere/else.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple https://example.org/simple'
global.index-url='https://pypi.org/simple'
install.index-url='https://mirror.example/simple'
user.ignored='x'
"""


def test_pip_config_list_precedence() -> None:
    config = parse_pip_config_list(PIP_CONFIG_LIST)
    assert config == {
        "cert": "/etc/ssl/certs/ca-certificates.crt",  # :env: beats global
        "find-links": "/opt/wheels",
        "constraint": "/etc/xdg/pip/constraints.txt",
        "extra-index-url": "file:///opt/pypi/simple https://example.org/simple",
        "index-url": "https://mirror.example/simple",  # install beats global
    }


def test_pip_settings_forward_options_mount_local_paths_and_pass_proxies(tmp_path: Path) -> None:
    index = tmp_path / "index" / "simple"
    index.mkdir(parents=True)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("six<2\n")
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    config = {
        "extra-index-url": f"file://{index} https://example.org/simple",
        "find-links": str(wheels),
        "constraint": str(constraints),
        "cert": "/nonexistent.crt",
        "user": "true",  # not forwarded: it would defeat --target
    }
    environ = {CA_BUNDLE_ENV: str(bundle), "HTTPS_PROXY": "http://proxy:3128", "HOME": "/x"}
    settings = pip_settings(config, environ)
    assert settings.options == {
        "PIP_EXTRA_INDEX_URL": f"file://{index} https://example.org/simple",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_CONSTRAINT": str(constraints),
    }
    # A file:// index is mounted from its parent: its pages link to ../../files/.
    assert sorted(settings.mounts) == sorted(
        [str(tmp_path / "index"), str(wheels), str(constraints)]
    )
    assert settings.proxies == {"HTTPS_PROXY": "http://proxy:3128"}
    assert settings.ca_bundle == str(bundle)
    env = settings.env()
    assert env["PIP_CERT"] == env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"] == CONTAINER_CA
    assert f"{bundle}:{CONTAINER_CA}:ro" in settings.binds()

    assert pip_settings(config, {CA_BUNDLE_ENV: "none"}).ca_bundle is None
    with pytest.raises(SpecError, match=CA_BUNDLE_ENV):
        pip_settings(config, {CA_BUNDLE_ENV: str(tmp_path / "missing.crt")})


# -- with pip in the runtime image ---------------------------------------------


@pytest.mark.anyio
async def test_requirement_installs_is_importable_and_cached(
    engine: Backend,
    tmp_path: Path,
    deployment_id: str,
    make_function: Callable[..., Path],
    nothing_left: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = make_function("uses-six", SIX_FUNCTION, **{"requirements.txt": "six\n"})
    cache = tmp_path / "cache"
    lines: list[str] = []
    before = await pip_containers(engine)

    installed = await install_requirements(
        engine, code / "requirements.txt", cache_root=cache, progress=lines.append
    )
    assert installed.parent == cache.resolve()
    assert (installed / "lib" / "site-packages" / "six.py").is_file()
    assert any("Successfully installed six" in line for line in lines)
    assert await pip_containers(engine) == before  # the pip container is gone
    assert [p.name for p in cache.iterdir()] == [installed.name]  # no staging left

    # The second call is answered from the cache: fast, and no container at all.
    async def no_container(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("a cached install must not create a container")

    monkeypatch.setattr(engine, "create_container", no_container)
    started = time.monotonic()
    again = await install_requirements(engine, code / "requirements.txt", cache_root=cache)
    assert again == installed
    assert time.monotonic() - started < 0.5
    monkeypatch.undo()

    network = f"faaslab-{deployment_id}"
    network_id = await engine.create_network(network, {Label.DEPLOYMENT: deployment_id})
    try:
        context = InstanceContext(
            deployment_id=deployment_id,
            network=network,
            image=RUNTIME_IMAGE,
            start_timeout_s=30,
            stop_grace_s=1,
            remove=True,
            binds=[f"{installed}:/function/.python_packages:ro"],
        )
        spec = FunctionSpec(name="uses-six", code=str(code))
        async with (
            aiohttp.ClientSession() as session,
            open_instance(engine, spec, 0, context, session) as instance,
        ):
            result = await instance.invoke(b"{}", timeout=30)
        assert result.error is None, result.error
        assert result.output["six"] == "1.17.0"
        assert result.output["from"].startswith("/function/.python_packages/lib/site-packages/")
    finally:
        await engine.remove_network(network_id)


@pytest.mark.anyio
async def test_a_requirement_that_does_not_exist_fails_with_pips_message(
    engine: Backend, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("faaslab-no-such-package-anywhere==0.0.1\n")
    before = await pip_containers(engine)
    with pytest.raises(RequirementsError) as raised:
        await install_requirements(engine, requirements, cache_root=tmp_path / "cache")
    message = str(raised.value)
    assert "pip exited with code 1" in message
    assert "No matching distribution found for faaslab-no-such-package-anywhere" in message
    assert await pip_containers(engine) == before
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.anyio
async def test_cancelled_install_removes_its_container_and_staging(
    engine: Backend, tmp_path: Path
) -> None:
    # A local package whose build hangs: pip is surely running when we cancel.
    package = tmp_path / "req" / "slowpkg"
    package.mkdir(parents=True)
    (package / "setup.py").write_text("import time\ntime.sleep(300)\n")
    requirements = tmp_path / "req" / "requirements.txt"
    requirements.write_text("./slowpkg\n")
    before = await pip_containers(engine)
    building = anyio.Event()

    def watch(line: str) -> None:
        if "slowpkg" in line:
            building.set()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: install_requirements(
                    engine, requirements, cache_root=tmp_path / "cache", progress=watch
                )
            )
            await building.wait()
            tg.cancel_scope.cancel()
    assert await pip_containers(engine) == before
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.anyio
async def test_empty_requirements_need_no_container(
    engine: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing needed\n\n")

    async def no_container(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("nothing to install must not create a container")

    monkeypatch.setattr(engine, "create_container", no_container)
    installed = await install_requirements(engine, requirements, cache_root=tmp_path / "cache")
    assert (installed / "lib" / "site-packages").is_dir()


@pytest.mark.anyio
async def test_missing_image(engine: Backend, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six\n")
    with pytest.raises(ImageMissing, match="faaslab/absent:0"):
        await install_requirements(
            engine, requirements, image="faaslab/absent:0", cache_root=tmp_path
        )
