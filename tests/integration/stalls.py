"""How late a bare 1 ms loop is on this host right now: the baseline a sampler is judged by.

This VM stalls now and then for 7-200 ms (steal time); a stall makes every
loop on the host late at once, a sampler's and a bare one's alike. Tests
that check 1 ms sampling run this probe over their measured window and
allow the sampler what the probe lost, so a stall does not fail CI while a
sampler that falls behind on its own does.
"""

from __future__ import annotations

import sys

import anyio

__all__ = ("host_stalls_during",)

#: A bare 1 ms loop at the sampler's priority, with the sampler's rule for a
#: missed deadline (not met within one interval; a stall skips the deadlines it
#: covers, each counted late). Prints "<deadlines> <late>" after ``argv[1]`` s.
HOST_STALL_PROBE = """
import os, sys, time
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
except (AttributeError, PermissionError, OSError):
    pass
interval = 1_000_000
deadline = time.monotonic_ns()
end = deadline + int(float(sys.argv[1]) * 1e9)
deadlines = late = 0
while deadline < end:
    deadline += interval
    wait = deadline - time.monotonic_ns()
    if wait > 0:
        time.sleep(wait / 1e9)
    now = time.monotonic_ns()
    deadlines += 1
    if now - deadline > interval:
        behind = (now - deadline) // interval
        deadlines += behind
        late += 1 + behind
        deadline += behind * interval
print(deadlines, late)
"""


async def host_stalls_during(seconds: float) -> tuple[int, int]:
    """(deadlines, late) of a bare 1 ms loop run for ``seconds``."""
    done = await anyio.run_process([sys.executable, "-c", HOST_STALL_PROBE, str(seconds)])
    deadlines, late = done.stdout.split()
    return int(deadlines), int(late)
