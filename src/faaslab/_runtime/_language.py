"""The per-language seam: what the host needs to know to run a function of a language.

Each language has a :class:`LanguageRuntime`: the file that holds the
handler, where its installed dependencies are mounted in the container, the
dependency manifest, the runtime image, and where its in-container server
lives in this package (``runtimes/<language>/``). The deployment asks
:func:`language_runtime` and never branches on a language name itself.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .._errors import SpecError
from ._python_images import RUNTIME_IMAGE as PYTHON_IMAGE

__all__ = ("LANGUAGES", "Language", "LanguageRuntime", "language_runtime")

Language = Literal["python"]


class LanguageRuntime(msgspec.Struct, frozen=True, kw_only=True):
    """How one language's functions are packaged and run."""

    name: Language
    #: The file in a function directory that defines ``handler``.
    entry_file: str
    #: The dependency manifest in a function directory, when it has one.
    manifest: str
    #: Where installed dependencies are mounted (read-only) in the container.
    packages_mount: str
    #: The runtime image functions of this language run in by default.
    image: str
    #: The package directory (under ``faaslab/runtimes/``) of the in-container code.
    sources: str


PYTHON = LanguageRuntime(
    name="python",
    entry_file="function.py",
    manifest="requirements.txt",
    packages_mount="/function/.python_packages",
    image=PYTHON_IMAGE,
    sources="python",
)

LANGUAGES: dict[str, LanguageRuntime] = {"python": PYTHON}


def language_runtime(name: str) -> LanguageRuntime:
    """The runtime of ``name``; a clear SpecError for a language faaslab does not run."""
    try:
        return LANGUAGES[name]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise SpecError(
            f"language: {name!r} is not available in this build of faaslab (it runs: {known})"
        ) from None
