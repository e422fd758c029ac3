"""The host side of each function language: packaging, dependencies, images.

- :func:`language_runtime` / :class:`LanguageRuntime` (``_language``) — the
  per-language seam: entry file, dependency manifest, where installed
  dependencies are mounted, the runtime image. Today Python.
- :func:`install_requirements` (``_requirements``) — ``requirements.txt``
  installed by pip inside a runtime container, cached by content;
  ``_pipconfig`` decides what of the host's pip configuration (index, CA
  bundle, proxies) the container gets.
- :func:`build_python_images` (``_python_images``) — the Python base and
  runtime images, built without a registry.
- :func:`ensure_sampler_image` (``_sampler_image``) — the node sampler's
  image (Swarm): the sampling worker on the runtime image.

What runs inside the containers is not here but in ``faaslab/runtimes/<language>/``.
"""

from ._language import LANGUAGES, Language, LanguageRuntime, language_runtime
from ._pipconfig import CA_BUNDLE_ENV, CONTAINER_CA, PipSettings, host_pip_config, pip_settings
from ._python_images import (
    BASE_IMAGE,
    MINIO_REQUIREMENT,
    RUNTIME_IMAGE,
    build_python_images,
    python_image_statuses,
)
from ._requirements import default_cache_root, install_requirements
from ._sampler_image import SAMPLER_IMAGE, ensure_sampler_image

__all__ = (
    "BASE_IMAGE",
    "CA_BUNDLE_ENV",
    "CONTAINER_CA",
    "LANGUAGES",
    "MINIO_REQUIREMENT",
    "RUNTIME_IMAGE",
    "SAMPLER_IMAGE",
    "Language",
    "LanguageRuntime",
    "PipSettings",
    "build_python_images",
    "default_cache_root",
    "ensure_sampler_image",
    "host_pip_config",
    "install_requirements",
    "language_runtime",
    "pip_settings",
    "python_image_statuses",
)
