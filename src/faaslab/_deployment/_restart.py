"""What follows the end of an instance's container: the crash policy (pure, no I/O).

Each end has a :class:`Cause`, and the policy tells the function's fault
from the platform's, as a cloud platform does:

- ``invocation`` — the container died while serving a call (out of memory,
  ``os._exit``, a signal). That call fails with the cause; the instance is
  replaced at once, and the death never counts against the function: the
  next call gets a fresh instance, as on AWS Lambda.
- ``retired`` — faaslab ended it on purpose (a timed-out call): replaced at once.
- ``stopped`` — it exited cleanly without faaslab asking (exit 0 or SIGTERM:
  ``docker stop``, an engine shutting down). Not the function's fault:
  replaced after the first backoff step, never counted.
- ``engine`` — the engine refused to run it (an error of its own, as while
  it shuts down, or a full disk). Not the function's fault: it backs off as
  a crash does (an engine error that persists must not be retried every
  second), but never counts towards the user's bound.
- ``crash`` — it died while idle, or a replacement failed to start (an
  import error, a crash in a background thread). These back off
  exponentially, like kubelet's CrashLoopBackOff.

kubelet's CrashLoopBackOff (``backOffPeriod = 10 s``, ``MaxContainerBackOff
= 300 s``, client-go's backoff reset after 2 x the cap, i.e. 10 minutes
without a failure) is scaled down here by ten, keeping its shape: 1 s,
doubling, capped at 30 s, forgotten after 60 s without a crash. kubelet's
numbers protect a shared cluster (its API server, image pulls, thousands
of pods) over services that run for days; a faaslab deployment is a local
run of minutes with one user waiting, where a 5-minute cap would stall an
experiment longer than it runs, while 30 s still bounds a crash loop to
about two container starts a minute (< 2 % of a core).

The function is refused for good only when the user asked for it with
``max_restarts``: more than that many crashes within ``window_s``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = (
    "Cause",
    "CrashHistory",
    "RestartDecision",
    "RestartPolicy",
    "after_death",
    "cause_of",
)

#: Why an instance's container ended (see the module docstring).
Cause = Literal["invocation", "retired", "stopped", "engine", "crash"]


class RestartPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The crash policy's numbers (the deployment spec's restart fields)."""

    #: The first backoff after a crash; it doubles with each crash in a row.
    initial_backoff_s: float = 1.0
    #: The cap of the backoff (kubelet: 300 s; see the module docstring).
    max_backoff_s: float = 30.0
    #: Crash-free time after which the backoff starts over (kubelet: 2 x the cap).
    reset_after_s: float = 60.0
    #: Crashes allowed within ``window_s`` before the function is given up;
    #: None (the default): never given up, it keeps backing off.
    max_restarts: int | None = None
    window_s: float = 60.0


class CrashHistory(msgspec.Struct, frozen=True):
    """One instance position's crashes (monotonic seconds)."""

    #: Crashes in a row (the backoff's exponent), since the last reset.
    streak: int = 0
    #: When the last crash happened (None: never, or forgotten).
    last: float | None = None
    #: Crashes inside the give-up window, oldest first (only with ``max_restarts``).
    recent: tuple[float, ...] = ()


class RestartDecision(msgspec.Struct, frozen=True):
    """What follows one end of a container."""

    cause: Cause
    history: CrashHistory
    #: Seconds to wait before the replacement (meaningless when ``give_up``).
    backoff_s: float
    #: The position crashed more often than the user allowed: fail the function.
    give_up: bool = False


def cause_of(
    *, retired: bool, during_invocation: bool, exit_code: int, oom_killed: bool
) -> Cause:
    """Classify an end from what the instance saw and how the container exited.

    Exit 0 is how the runtime answers SIGTERM, and 143 is SIGTERM unhandled:
    someone outside faaslab stopped the container. A death while serving a
    call is the call's (the function's) fault, whatever the exit code.
    """
    if retired:
        return "retired"
    if during_invocation:
        return "invocation"
    if exit_code in (0, 143) and not oom_killed:
        return "stopped"
    return "crash"


def after_death(
    history: CrashHistory, now: float, cause: Cause, policy: RestartPolicy
) -> RestartDecision:
    """Decide what follows an end at ``now`` (monotonic seconds) of the given cause."""
    if cause in ("invocation", "retired"):
        return RestartDecision(cause, history, 0.0)
    if cause == "stopped":
        return RestartDecision(cause, history, policy.initial_backoff_s)
    streak = history.streak
    if history.last is None or now - history.last > policy.reset_after_s:
        streak = 0  # crash-free long enough: start over, as kubelet does
    streak += 1
    backoff = min(policy.initial_backoff_s * 2 ** (streak - 1), policy.max_backoff_s)
    recent: tuple[float, ...] = history.recent
    give_up = False
    if policy.max_restarts is not None and cause == "crash":
        recent = tuple(t for t in (*history.recent, now) if now - t <= policy.window_s)
        give_up = len(recent) > policy.max_restarts
    return RestartDecision(
        cause, CrashHistory(streak=streak, last=now, recent=recent), backoff, give_up
    )
