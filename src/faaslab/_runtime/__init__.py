"""The host side of each function language: packaging, dependencies, images.

- :func:`language_runtime` / :class:`LanguageRuntime` (``_language``) — the
  per-language seam: entry file, dependency manifest, where installed
  dependencies are mounted, the runtime and installer images, SeBS's package
  globs, the load check; :func:`install_dependencies` installs a manifest for
  a runtime. Python and Node.js.
- :func:`install_requirements` (``_requirements``) — ``requirements.txt``
  installed by pip inside a runtime container; ``_pipconfig`` decides what of
  the host's pip configuration (index, CA bundle, proxies) the container gets.
- :func:`install_packages` (``_packages``) — ``package.json`` installed by npm
  (``_npm``) inside an installer container; ``_npmconfig`` decides what of the
  host's npm configuration (npmrc files, CA bundle, proxies) it gets.
- ``_cache`` — the content-addressed cache both installers fill.
- :func:`build_python_images` (``_python_images``), :func:`build_nodejs_images`
  (``_nodejs_images``) — the runtime images, built without a registry from
  Debian root filesystems (``_debian``: mmdebstrap, slim).
- :func:`ensure_sampler_image` (``_sampler_image``) — the node sampler's
  image (Swarm): the sampling worker on the runtime image.

What runs inside the containers is not here but in ``faaslab/runtimes/<language>/``.
"""

from ._language import (
    LANGUAGES,
    LanguageRuntime,
    has_dependencies,
    install_dependencies,
    language_runtime,
)
from ._nodejs_images import (
    NODE_BASE_IMAGE,
    NODE_MAJOR,
    NODE_RUNTIME_IMAGE,
    NPM_IMAGE,
    build_nodejs_images,
    nodejs_image_statuses,
)
from ._npmconfig import NPM_CA_BUNDLE_ENV, NpmSettings, host_npm_config, npm_settings
from ._packages import default_packages_cache_root, install_packages
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
    "NODE_BASE_IMAGE",
    "NODE_MAJOR",
    "NODE_RUNTIME_IMAGE",
    "NPM_CA_BUNDLE_ENV",
    "NPM_IMAGE",
    "RUNTIME_IMAGE",
    "SAMPLER_IMAGE",
    "Language",
    "LanguageRuntime",
    "NpmSettings",
    "PipSettings",
    "build_nodejs_images",
    "build_python_images",
    "default_cache_root",
    "default_packages_cache_root",
    "ensure_sampler_image",
    "has_dependencies",
    "host_npm_config",
    "host_pip_config",
    "install_dependencies",
    "install_packages",
    "install_requirements",
    "language_runtime",
    "nodejs_image_statuses",
    "npm_settings",
    "pip_settings",
    "python_image_statuses",
)
