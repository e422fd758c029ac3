"""The runtime images as built: what they carry, checked inside containers of them."""

from __future__ import annotations

import secrets

import pytest

from faaslab._backend import Backend, Label, run_to_exit
from faaslab._cli._doctor import _nodejs_check
from faaslab._runtime import BASE_IMAGE, NODE_RUNTIME_IMAGE, NPM_IMAGE, RUNTIME_IMAGE
from faaslab._runtime._nodejs_images import NODE_PACKAGES
from faaslab._runtime._python_images import DEBIAN_PACKAGES

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def run(engine: Backend, image: str, *command: str) -> tuple[int | None, str]:
    probe = f"probe-{secrets.token_hex(4)}"
    config = {
        "Image": image,
        "Entrypoint": list(command),
        "Labels": {Label.DEPLOYMENT: probe, Label.ROLE: "probe"},
        "HostConfig": {"NetworkMode": "none"},
    }
    result = await run_to_exit(engine, config, name=f"faaslab-{probe}", timeout_s=60)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("image", "packages"),
    [(BASE_IMAGE, DEBIAN_PACKAGES), (NODE_RUNTIME_IMAGE, NODE_PACKAGES)],
)
async def test_the_bases_carry_their_debian_packages(
    engine: Backend, image: str, packages: tuple[str, ...]
) -> None:
    code, output = await run(
        engine, image, "dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages
    )
    assert code == 0, output
    installed = dict(line.split(" ", 1) for line in output.splitlines())
    assert installed == dict.fromkeys(packages, "installed")


async def test_python_has_libstdcxx_and_sebs_additions(engine: Backend) -> None:
    code, output = await run(
        engine,
        RUNTIME_IMAGE,
        "python3",
        "-c",
        "import ctypes, cffi, minio; ctypes.CDLL('libstdc++.so.6'); print(cffi.__version__)",
    )
    assert code == 0, output
    # The slim excludes: no manual pages, no translations; the copyright files stay.
    code, output = await run(
        engine, RUNTIME_IMAGE, "sh", "-c",
        "find /usr/share/man /usr/share/locale -type f 2>/dev/null | wc -l; "
        "ls /usr/share/doc/libstdc++6",
    )  # fmt: skip
    assert code == 0, output
    assert output.split() == ["0", "copyright"]


async def test_nodejs_runtime_and_installer(engine: Backend) -> None:
    check = await _nodejs_check(engine)
    assert check.ok, check.detail
    assert check.detail.startswith("Node.js v18.")
    code, _ = await run(engine, NODE_RUNTIME_IMAGE, "sh", "-c", "command -v npm")
    assert code != 0  # functions need no npm: the runtime image carries none
    code, output = await run(engine, NPM_IMAGE, "npm", "--version")
    assert code == 0, output
    assert output.strip().split(".")[0] == "9"  # Debian 12's npm
