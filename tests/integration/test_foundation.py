"""The foundation against the real engine: doctor, offline image builds, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from faaslab._backend import INPUTS_LABEL, Backend
from faaslab._cli._images import build_images
from faaslab._runtime import (
    BASE_IMAGE,
    NODE_BASE_IMAGE,
    NODE_RUNTIME_IMAGE,
    NPM_IMAGE,
    RUNTIME_IMAGE,
)
from faaslab._storage import _image as storage_image_module
from faaslab._storage import nosql_image

pytestmark = pytest.mark.integration


def faaslab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faaslab", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_doctor_passes_every_check() -> None:
    result = faaslab("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines
    assert all(line.startswith("ok") for line in lines), result.stdout
    names = " ".join(lines)
    for check in (
        "engine",
        "cgroups",
        "memory file",
        "nodejs runtime",
        "image faaslab/python:3.11",
        "image faaslab/nodejs:18",
        "sampler",
    ):
        assert check in names


def test_doctor_names_an_unreachable_endpoint_in_one_line() -> None:
    result = faaslab("doctor", env={"DOCKER_HOST": "unix:///nonexistent"})
    assert result.returncode == 1
    assert "unix:///nonexistent" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # One line for the engine (no cascade of failures after it); the host
    # sampler's line, which needs no engine, follows.
    lines = result.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["FAIL", "engine"], ["ok", "sampler"]]


def test_images_build_is_a_no_op_when_current() -> None:
    first = faaslab("images", "build")
    assert first.returncode == 0, first.stderr
    second = faaslab("images", "build")
    assert second.returncode == 0, second.stderr
    # Python base and runtime, Node.js base, installer and runtime, storage, NoSQL.
    assert second.stdout.count("up to date") == 7, second.stdout
    listing = faaslab("images", "list")
    assert RUNTIME_IMAGE in listing.stdout


@pytest.mark.anyio
async def test_an_image_whose_inputs_change_is_rebuilt(
    engine: Backend, monkeypatch: pytest.MonkeyPatch, deployment_id: str
) -> None:
    # A private tag, so the images the rest of the suite uses are not touched.
    tag = f"faaslab/seaweedfs:test-{deployment_id}"
    monkeypatch.setattr(storage_image_module, "storage_image", lambda: tag)
    try:
        built = await build_images(engine)
        assert (tag, True) in [(s.name, rebuilt) for s, rebuilt in built]
        again = await build_images(engine)
        assert all(not rebuilt for _, rebuilt in again)
        monkeypatch.setattr(storage_image_module, "_inputs", lambda *_: "changed-inputs")
        changed = await build_images(engine)
        assert [(s.name, rebuilt) for s, rebuilt in changed] == [
            (BASE_IMAGE, False),
            (RUNTIME_IMAGE, False),
            (NODE_BASE_IMAGE, False),
            (NPM_IMAGE, False),
            (NODE_RUNTIME_IMAGE, False),
            (tag, True),
            (nosql_image(), False),
        ]
        labels = await engine.image_labels(tag)
        assert labels is not None
        assert labels[INPUTS_LABEL] == "changed-inputs"
    finally:
        await engine.remove_image(tag)


def test_images_build_without_mmdebstrap_says_what_to_install(tmp_path: Path) -> None:
    # Only the venv's own tools on PATH: no mmdebstrap.
    result = faaslab("images", "build", "--force", env={"PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 1
    assert "apt-get install mmdebstrap" in result.stderr
    assert "Traceback" not in result.stderr
