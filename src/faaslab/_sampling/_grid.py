"""Deadline grids (pure): where deadlines fall, how a late sampler catches up,
and how many deadlines a sampler restart lost.

Every registration samples on absolute deadlines ``t0 + k * interval`` on the
monotonic clock. Registrations of one interval form one group with one grid,
so many files cost one wake-up per deadline; grids of different intervals are
aligned to multiples of ``gcd(interval, 1 ms)``, so that intervals dividing
1 ms (or multiples of it) wake together too. Deployments with different
intervals sharing the host sampler therefore each get their own grid, and
their wake-ups coincide wherever the arithmetic allows.
"""

from __future__ import annotations

import math

__all__ = ("ALIGNMENT_NS", "catch_up", "first_deadline", "lost_deadlines")

#: Grids are aligned to multiples of gcd(interval, ALIGNMENT_NS).
ALIGNMENT_NS = 1_000_000


def first_deadline(now_ns: int, interval_ns: int) -> int:
    """The first deadline of a new grid: the next aligned instant after now."""
    if interval_ns <= 0:
        raise ValueError(f"interval must be positive, got {interval_ns} ns")
    grid = math.gcd(interval_ns, ALIGNMENT_NS)
    return (now_ns // grid + 1) * grid


def catch_up(following_ns: int, now_ns: int, interval_ns: int) -> tuple[int, int]:
    """The next deadline to serve and how many were skipped to get there.

    ``following_ns`` is the deadline after the one just served. A sampler
    more than one interval behind it does not spin to catch up: it skips to
    the next future deadline, and the skipped deadlines are counted (late,
    and without a sample).
    """
    behind = now_ns - following_ns
    if behind <= interval_ns:
        return following_ns, 0
    missed = behind // interval_ns + 1
    return following_ns + missed * interval_ns, missed


def lost_deadlines(old_t0_ns: int, accounted: int, new_t0_ns: int, interval_ns: int) -> int:
    """Deadlines of an old registration lost while its sampler was down.

    The old grid's deadlines are ``old_t0 + k * interval``; ``accounted`` of
    them (sampled or counted skipped) reached the client, in order. Every
    other deadline before the new registration's first one was lost: samples
    the dead sampler had not yet sent, and the time until a new one took over.
    """
    if interval_ns <= 0:
        raise ValueError(f"interval must be positive, got {interval_ns} ns")
    if new_t0_ns <= old_t0_ns:
        return 0
    before_new = -((old_t0_ns - new_t0_ns) // interval_ns)  # ceil((new - old) / interval)
    return max(0, before_new - accounted)
