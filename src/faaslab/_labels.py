"""Labels on every engine object faaslab creates.

Every container, network and volume carries ``faaslab.deployment=<id>``; that
label is how `ps`, `gc`, `stop` after a crash and the test suite's leak check
find what belongs to whom.
"""

from __future__ import annotations

__all__ = ("DEPLOYMENT", "FUNCTION", "INSTANCE", "OWNER", "ROLE", "STATE", "deployment_filter")

DEPLOYMENT = "faaslab.deployment"
FUNCTION = "faaslab.function"
INSTANCE = "faaslab.instance"
#: What the object is for: "function", "storage", "probe", "pip".
ROLE = "faaslab.role"
#: ``<pid>:<start time>`` of the process that owns the deployment (see ``_owner``).
OWNER = "faaslab.owner"
#: The deployment file, when there is one.
STATE = "faaslab.state"


def deployment_filter(deployment_id: str | None = None) -> str:
    """An engine label filter for one deployment's objects, or for all of faaslab's."""
    return DEPLOYMENT if deployment_id is None else f"{DEPLOYMENT}={deployment_id}"
