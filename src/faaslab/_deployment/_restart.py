"""When a dead instance is replaced, and when its function is given up (pure, no I/O).

Each instance position keeps the times its containers died unexpectedly
(faaslab's own retirements, such as a timed-out call, do not count). A death
is followed by a replacement after an exponential backoff (0.1 s, 0.2 s,
0.4 s, ... capped at 5 s); more than ``max_restarts`` deaths within
``window_s`` fail the function.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

__all__ = ("FIRST_BACKOFF_S", "MAX_BACKOFF_S", "RestartDecision", "after_death")

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


class RestartDecision(msgspec.Struct, frozen=True):
    """What follows one unexpected death."""

    #: The deaths still inside the window, this one included (oldest first).
    recent: tuple[float, ...]
    #: Seconds to wait before the replacement (meaningless when ``give_up``).
    backoff_s: float
    #: The position has died too often: fail the function instead.
    give_up: bool


def after_death(
    deaths: Sequence[float], now: float, *, max_restarts: int, window_s: float
) -> RestartDecision:
    """Decide what follows a death at ``now``, given earlier deaths (monotonic seconds)."""
    recent = tuple(t for t in (*deaths, now) if now - t <= window_s)
    if len(recent) > max_restarts:
        return RestartDecision(recent, 0.0, give_up=True)
    backoff = min(FIRST_BACKOFF_S * 2 ** (len(recent) - 1), MAX_BACKOFF_S)
    return RestartDecision(recent, backoff, give_up=False)
