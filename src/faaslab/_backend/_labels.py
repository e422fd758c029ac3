"""Labels on every engine object faaslab creates.

Every container, network and volume carries ``faaslab.deployment=<id>``; that
label is how `ps`, `gc`, `stop` after a crash and the test suite's leak check
find what belongs to whom.
"""

from __future__ import annotations

from typing import Final

__all__ = ("Label", "deployment_filter")


class Label:
    """The label keys (a namespace: ``Label.DEPLOYMENT``)."""

    DEPLOYMENT: Final = "faaslab.deployment"
    FUNCTION: Final = "faaslab.function"
    INSTANCE: Final = "faaslab.instance"
    #: What the object is for: "function", "storage", "probe", "pip".
    ROLE: Final = "faaslab.role"
    #: ``<pid>:<start time>`` of the process that owns the deployment (see ``_owner``).
    OWNER: Final = "faaslab.owner"
    #: The deployment file, when there is one.
    STATE: Final = "faaslab.state"
    #: SHA-256 (hex) of the deployment's sampler token: the host sampler
    #: samples a container only for a client that presents the token.
    SAMPLER_TOKEN: Final = "faaslab.sampler-token"


def deployment_filter(deployment_id: str | None = None) -> str:
    """An engine label filter for one deployment's objects, or for all of faaslab's."""
    return Label.DEPLOYMENT if deployment_id is None else f"{Label.DEPLOYMENT}={deployment_id}"
