"""The per-language seam: what the host needs to know to run a function of a language.

Each language has a :class:`LanguageRuntime`: the file that holds the
handler, the dependency manifest and where its installed dependencies are
mounted in the container, the runtime image (and the one its installer runs
in), what SeBS packages of a benchmark's ``<language>/`` directory, and the
command that checks a function loads. The deployment asks
:func:`language_runtime` and :func:`install_dependencies` and never branches
on a language name itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec

from .._backend import Backend
from .._errors import SpecError
from .._spec import FUNCTION_LANGUAGES
from ._nodejs_images import NODE_RUNTIME_IMAGE, NPM_IMAGE
from ._packages import install_packages, needs_install, read_package_json
from ._python_images import RUNTIME_IMAGE as PYTHON_IMAGE
from ._requirements import install_requirements

__all__ = (
    "LANGUAGES",
    "LanguageRuntime",
    "has_dependencies",
    "install_dependencies",
    "language_runtime",
)


class LanguageRuntime(msgspec.Struct, frozen=True, kw_only=True):
    """How one language's functions are packaged and run."""

    name: str
    #: The file in a function directory that defines ``handler``.
    entry_file: str
    #: The versions the runtime image carries; the first is the default.
    versions: tuple[str, ...]
    #: The dependency manifest in a function directory, when it has one.
    manifest: str
    #: Where installed dependencies are mounted (read-only) in the container.
    packages_mount: str
    #: The runtime image functions of this language run in by default.
    image: str
    #: The image the dependency installer runs in (pip in the runtime, npm beside it).
    installer_image: str
    #: The package directory (under ``faaslab/runtimes/``) of the in-container code.
    sources: str
    #: What SeBS's ``copy_code`` takes from a benchmark's ``<language>/`` directory.
    sebs_globs: tuple[str, ...]
    #: The command (in the runtime image) that loads a function and exits 0 or 1
    #: with a one-line reason, run before any instance starts; None when the
    #: host checks the function itself (Python: the handler is found by parsing).
    load_check: tuple[str, ...] | None = None

    @property
    def default_version(self) -> str:
        return self.versions[0]

    def resolve_version(self, requested: str | None) -> str:
        """The image version a request names: "18.20" and "18" are 18 (default: the first)."""
        known = FUNCTION_LANGUAGES[self.name].version_of(requested)
        return known or requested or self.default_version

    def manifest_variant(self, version: str | None) -> str:
        """SeBS's per-version manifest name (``requirements.txt.3.11``, ``package.json.18``)."""
        return f"{self.manifest}.{self.resolve_version(version)}"


PYTHON = LanguageRuntime(
    name="python",
    entry_file=FUNCTION_LANGUAGES["python"].entry_file,
    versions=FUNCTION_LANGUAGES["python"].versions,
    manifest="requirements.txt",
    packages_mount="/function/.python_packages",
    image=PYTHON_IMAGE,
    installer_image=PYTHON_IMAGE,
    sources="python",
    sebs_globs=("*.py", "requirements.txt*"),
)

NODEJS = LanguageRuntime(
    name="nodejs",
    entry_file=FUNCTION_LANGUAGES["nodejs"].entry_file,
    versions=FUNCTION_LANGUAGES["nodejs"].versions,
    manifest="package.json",
    packages_mount="/function/.node_packages",
    image=NODE_RUNTIME_IMAGE,
    installer_image=NPM_IMAGE,
    sources="nodejs",
    sebs_globs=("*.js", "package.json"),
    load_check=("node", "/opt/faaslab/server.js", "--check"),
)

LANGUAGES: dict[str, LanguageRuntime] = {"python": PYTHON, "nodejs": NODEJS}


def language_runtime(name: str) -> LanguageRuntime:
    """The runtime of ``name``; a clear SpecError for a language faaslab does not run."""
    try:
        return LANGUAGES[name]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise SpecError(f"language: {name!r} is not supported (faaslab runs: {known})") from None


def has_dependencies(runtime: LanguageRuntime, manifest: Path) -> bool:
    """Whether ``manifest`` asks for anything to be installed (a SpecError when unreadable)."""
    if runtime.name == "nodejs":
        return needs_install(read_package_json(manifest))
    try:
        text = manifest.read_text()
    except OSError as exc:
        raise SpecError(f"requirements: cannot read {manifest}: {exc.strerror}") from exc
    return any(line.split("#", 1)[0].strip() for line in text.splitlines())


async def install_dependencies(
    engine: Backend,
    runtime: LanguageRuntime,
    manifest: Path,
    *,
    image: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Install ``manifest`` for ``runtime``; return the directory to mount at its packages mount.

    ``image`` is the function's runtime image: pip runs in it (so packages fit
    its Python). npm runs in the installer image, which carries npm beside the
    runtime's Node (the runtime image has none).
    """
    if runtime.name == "nodejs":
        return await install_packages(
            engine, manifest, image=runtime.installer_image, progress=progress
        )
    return await install_requirements(
        engine, manifest, image=image or runtime.installer_image, progress=progress
    )
