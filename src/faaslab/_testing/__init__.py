"""Testing with faaslab: the pytest plugin (``pytest11`` entry point ``faaslab``).

- ``_plugin`` — the fixtures ``faaslab_deployment`` (an async factory of
  deployments, stopped and swept at teardown) and ``faaslab_function_dir``
  (a handler's source written to a function directory), and the ``faaslab``
  marker (skip when no engine answers). ``spec_for`` (pure) turns what a test
  passes into a DeploymentSpec.
"""

from ._plugin import spec_for

__all__ = ("spec_for",)
