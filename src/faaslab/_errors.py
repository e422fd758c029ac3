"""The one error hierarchy of faaslab.

Every error faaslab raises on purpose is a :class:`FaaslabError`; the CLI
turns each into one readable line and an exit code (``exit_code``)::

    FaaslabError
    ├── SpecError                 bad input: a spec, a path, an option (exit 2)
    ├── StateError                a state file: corrupt, foreign, other version (exit 2)
    ├── EngineError               the Docker engine misbehaved
    │   └── EngineUnreachable     no engine answers at the endpoint
    ├── ImageError
    │   ├── ImageMissing          an image faaslab needs is not on the engine
    │   └── ImageBuildError       building an image failed (the step's output attached)
    ├── InstanceError             one function instance (container) failed
    │   ├── InstanceStartError    never became ready (exit code and log tail attached)
    │   └── InstanceLost          died or was OOM-killed while serving a call
    ├── InvocationError           the handler raised (remote type, message, traceback)
    ├── InvocationTimeout         no answer within the timeout
    ├── FunctionFailed            restarted too often; the function is given up
    ├── LifecycleError            a lifecycle transition the table forbids (a bug in faaslab)
    ├── SamplingError             memory sampling could not be set up
    ├── StorageError              the object store failed or refused
    ├── RequirementsError         pip or npm could not install a function's dependencies
    └── SystemSetupError          the host lacks something (a tool, a permission)

Errors carry what a user needs to act on them in their message; structured
details sit in attributes for programs.
"""

from __future__ import annotations

__all__ = (
    "EngineError",
    "EngineUnreachable",
    "FaaslabError",
    "FunctionFailed",
    "ImageBuildError",
    "ImageError",
    "ImageMissing",
    "InstanceError",
    "InstanceLost",
    "InstanceStartError",
    "InvocationError",
    "InvocationTimeout",
    "LifecycleError",
    "RequirementsError",
    "SamplingError",
    "SpecError",
    "StateError",
    "StorageError",
    "SystemSetupError",
)


class FaaslabError(Exception):
    """Base of every error faaslab raises on purpose."""

    #: Exit code of the CLI when this error ends a command.
    exit_code: int = 1


class SpecError(FaaslabError, ValueError):
    """A spec, option or path given by the user is invalid."""

    exit_code = 2


class StateError(FaaslabError):
    """A state (deployment) file cannot be used as it is."""

    exit_code = 2


class EngineError(FaaslabError):
    """The Docker engine answered with an error."""


class EngineUnreachable(EngineError):
    """No Docker engine answers at the endpoint."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(
            f"no Docker engine answers at {endpoint}: {reason} "
            "(start one with `make engine`, or point DOCKER_HOST at a running engine)"
        )


class ImageError(FaaslabError):
    """An image faaslab needs is unusable."""


class ImageMissing(ImageError):
    """An image faaslab needs is not on the engine."""

    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(
            f"image {image} is not on the engine: run `python -m faaslab images build`"
        )


class ImageBuildError(ImageError):
    """Building an image failed."""


class SystemSetupError(FaaslabError):
    """The host lacks a tool or permission faaslab needs."""


class InstanceError(FaaslabError):
    """A function instance failed."""


class InstanceStartError(InstanceError):
    """An instance never became ready."""

    def __init__(self, message: str, *, exit_code: int | None = None, logs: str = "") -> None:
        self.container_exit_code = exit_code
        self.logs = logs
        text = message
        if exit_code is not None:
            text += f" (container exit code {exit_code})"
        if logs.strip():
            text += "\n--- last container log lines ---\n" + logs.rstrip()
        super().__init__(text)


class InstanceLost(InstanceError):
    """An instance died (or was OOM-killed) while serving a call."""

    def __init__(self, instance: str, reason: str, *, oom_killed: bool = False) -> None:
        self.instance = instance
        self.reason = reason
        self.oom_killed = oom_killed
        super().__init__(f"instance {instance} was lost: {reason}")


class InvocationError(FaaslabError):
    """The function's handler raised; the remote error is attached."""

    def __init__(self, function: str, remote_type: str, message: str, traceback: str) -> None:
        self.function = function
        self.remote_type = remote_type
        self.remote_message = message
        self.traceback = traceback
        super().__init__(f"{function}: handler raised {remote_type}: {message}")


class InvocationTimeout(FaaslabError):
    """An invocation got no answer in time."""


class FunctionFailed(FaaslabError):
    """A function was given up after too many restarts."""


class SamplingError(FaaslabError):
    """Memory sampling could not be set up."""


class StorageError(FaaslabError):
    """The object store failed or refused a request."""


class RequirementsError(FaaslabError):
    """Installing a function's dependencies failed; the installer's last output lines attached."""

    def __init__(self, message: str, *, output: str = "", tool: str = "pip") -> None:
        self.output = output
        self.tool = tool
        text = message
        if output.strip():
            text += f"\n--- {tool}'s last output lines ---\n" + output.rstrip()
        super().__init__(text)


class LifecycleError(FaaslabError):
    """An instance was asked to make a transition its lifecycle does not allow."""
