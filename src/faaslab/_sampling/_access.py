"""Who may sample what through the host sampler: the access decisions (pure).

A connection serves one deployment (its Attach names it). Each Register
names a container and, usually, the memory file the client found for it.
The sampler's access checker (``_verifier``, a process of its own) asks the
engine about the container and finds its memory file from its init process
(``/proc/<pid>/cgroup``); the functions here decide:

- the container exists, runs, and carries ``faaslab.deployment=<deployment>``;
- when it carries a sampler token digest (``faaslab.sampler-token``, the
  SHA-256 of the deployment's token, set by ``open_deployment``), the
  connection presented that token; over TCP a token is required;
- the file asked for is that container's memory file (or none was named:
  then the sampler samples the one it found).

What this does not stop, said plainly (also in docs/design.md): a client
running as the same user can claim any deployment id, read the tokens from
that user's own files and processes, talk to the engine itself, read every
cgroup file the user may read, or signal the sampler. The check keeps
deployments from reading each other's containers by mistake and keeps a
client from pointing the sampler at arbitrary files; it is not a boundary
between processes of one user. Over TCP the token is the boundary.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import msgspec

from .._backend import Label

__all__ = (
    "AccessRequest",
    "Verdict",
    "check_container",
    "check_path",
    "token_digest",
)

DEPLOYMENT_LABEL = Label.DEPLOYMENT
TOKEN_LABEL = Label.SAMPLER_TOKEN


class AccessRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One Register to check, from the sampler to its access checker."""

    request: int
    deployment: str
    container: str
    #: The file the client asked for ("" = find the container's).
    path: str
    token: str
    #: The engine to ask (the client's, over a unix socket; the node's over TCP).
    engine: str
    #: TCP connections must present the token its containers carry.
    require_token: bool


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """The checker's answer: the file to sample, or why not."""

    request: int
    #: "" when allowed.
    error: str = ""
    usage: str = ""
    peak: str | None = None


def token_digest(token: str) -> str:
    """What a deployment's containers carry in TOKEN_LABEL for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_container(request: AccessRequest, document: dict[str, Any] | None) -> tuple[str, int]:
    """(error, init pid) from the container's inspect document; error "" = allowed."""
    short = request.container[:12]
    if not request.container:
        return "no container named: the host sampler samples only containers", 0
    if document is None:
        return f"no container {short} on {request.engine}", 0
    labels = (document.get("Config") or {}).get("Labels") or {}
    owner = labels.get(DEPLOYMENT_LABEL)
    if owner is None:
        return f"container {short} is not faaslab's (no {DEPLOYMENT_LABEL} label)", 0
    if owner != request.deployment:
        return (
            f"container {short} belongs to deployment {owner!r}, not {request.deployment!r}: "
            "a deployment samples only its own containers",
            0,
        )
    digest = labels.get(TOKEN_LABEL)
    if digest is None and request.require_token:
        return f"container {short} carries no {TOKEN_LABEL} label: TCP clients need one", 0
    if digest is not None and not hmac.compare_digest(digest, token_digest(request.token)):
        return f"wrong sampler token for deployment {request.deployment!r}", 0
    state = document.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        return f"container {short} is not running", 0
    return "", pid


def check_path(requested: str, usage: str) -> str:
    """Error ("" = allowed) for sampling `requested` when the container's file is `usage`.

    Both are compared as resolved, normalised paths (the caller resolves
    symbolic links): the sampler opens the file it found, never another.
    """
    if not requested:
        return ""
    if os.path.normpath(requested) != os.path.normpath(usage):
        return f"{requested} is not the memory file of this container (that is {usage})"
    return ""
