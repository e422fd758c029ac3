"""Open-loop arrival times: a Poisson process, as offsets from the workload's start.

Pure and seeded, so its statistics are tested without a clock. The driver
sleeps until each absolute offset (never for the gap since the previous
call), so lateness does not accumulate into a lower rate.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ("poisson_arrivals",)


def poisson_arrivals(
    rate: float,
    rng: random.Random,
    *,
    count: int | None = None,
    duration_s: float | None = None,
) -> Iterator[float]:
    """Arrival offsets in seconds (increasing) of a Poisson process of ``rate`` per second.

    Gaps are exponential with mean ``1/rate``. Ends after ``count`` arrivals
    or at the first arrival at or beyond ``duration_s``, whichever comes first;
    with neither it never ends.
    """
    if not rate > 0:
        raise ValueError(f"rate: {rate}; must be > 0")
    t = 0.0
    n = 0
    while count is None or n < count:
        t += rng.expovariate(rate)
        if duration_s is not None and t >= duration_s:
            return
        yield t
        n += 1
