"""faaslab: run serverless functions locally in Docker and measure them.

async with faaslab.open_deployment(spec) as dep:
    inv = await dep.invoke("fn", {"n": 1})
"""

from ._aggregate import InstanceMemory, MemoryReport
from ._deployment import (
    Deployment,
    DeploymentStatistics,
    FunctionStatistics,
    InstanceStatistics,
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
from ._function import Instance
from ._invocation import Invocation, RemoteError
from ._messages import (
    DeploymentEvent,
    DeploymentStopped,
    FunctionFailedEvent,
    InstanceExited,
    InstanceReady,
    InstanceRestarted,
    InstanceStarting,
    SamplerLagging,
)
from ._open import open_deployment
from ._spec import DeploymentSpec, FunctionSpec, load_deployment_spec

__all__ = (
    "Deployment",
    "DeploymentEvent",
    "DeploymentSpec",
    "DeploymentStatistics",
    "DeploymentStopped",
    "EngineError",
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
    "Progress",
    "RemoteError",
    "RequirementsError",
    "SamplerLagging",
    "SamplingError",
    "SpecError",
    "StateError",
    "StorageError",
    "SystemSetupError",
    "Workload",
    "load_deployment_spec",
    "load_experiment_spec",
    "open_deployment",
    "read_records",
    "run_experiment",
)
