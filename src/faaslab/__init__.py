"""faaslab: run serverless functions locally in Docker and measure them.

async with faaslab.open_deployment(spec) as dep:
    inv = await dep.invoke("fn", {"n": 1})
"""

import structlog as _structlog

from ._aggregate import InstanceMemory, MemoryReport
from ._deployment import (
    Deployment,
    DeploymentStatistics,
    FunctionStatistics,
    InstanceStatistics,
    open_deployment,
)
from ._errors import (
    EngineError,
    EngineUnreachable,
    FaaslabError,
    FunctionFailed,
    ImageBuildError,
    ImageError,
    ImageMissing,
    InstanceError,
    InstanceLost,
    InstanceStartError,
    InvocationError,
    InvocationTimeout,
    RequirementsError,
    SamplingError,
    SpecError,
    StateError,
    StorageError,
    SystemSetupError,
)
from ._experiment import (
    ExperimentDeployment,
    ExperimentResult,
    ExperimentSpec,
    ExperimentSummary,
    InvocationRecord,
    Progress,
    Workload,
    load_experiment_spec,
    read_records,
    run_experiment,
)
from ._function import Instance, Invocation, RemoteError
from ._logging import enable_logging, use_stdlib_logging
from ._messages import (
    DeploymentEnded,
    DeploymentEvent,
    DeploymentStopped,
    EngineBack,
    EngineLost,
    FunctionFailedEvent,
    InstanceExited,
    InstanceReady,
    InstanceRestarted,
    InstanceStarting,
    SamplerLagging,
)
from ._spec import (
    DeploymentSpec,
    FunctionSpec,
    NoSQLSpec,
    ScalingSpec,
    StorageSpec,
    load_deployment_spec,
)

__all__ = (
    "Deployment",
    "DeploymentEnded",
    "DeploymentEvent",
    "DeploymentSpec",
    "DeploymentStatistics",
    "DeploymentStopped",
    "EngineBack",
    "EngineError",
    "EngineLost",
    "EngineUnreachable",
    "ExperimentDeployment",
    "ExperimentResult",
    "ExperimentSpec",
    "ExperimentSummary",
    "FaaslabError",
    "FunctionFailed",
    "FunctionFailedEvent",
    "FunctionSpec",
    "FunctionStatistics",
    "ImageBuildError",
    "ImageError",
    "ImageMissing",
    "Instance",
    "InstanceError",
    "InstanceExited",
    "InstanceLost",
    "InstanceMemory",
    "InstanceReady",
    "InstanceRestarted",
    "InstanceStartError",
    "InstanceStarting",
    "InstanceStatistics",
    "Invocation",
    "InvocationError",
    "InvocationRecord",
    "InvocationTimeout",
    "MemoryReport",
    "NoSQLSpec",
    "Progress",
    "RemoteError",
    "RequirementsError",
    "SamplerLagging",
    "SamplingError",
    "ScalingSpec",
    "SpecError",
    "StateError",
    "StorageError",
    "StorageSpec",
    "SystemSetupError",
    "Workload",
    "enable_logging",
    "load_deployment_spec",
    "load_experiment_spec",
    "open_deployment",
    "read_records",
    "run_experiment",
)

# A library's logging: to the stdlib's loggers (nothing on stdout; WARNING and
# above on stderr by the stdlib's last resort), unless the application or one
# of faaslab's entry points configured structlog already.
if not _structlog.is_configured():
    use_stdlib_logging()
