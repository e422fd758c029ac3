"""Choosing an instance for each invocation (no I/O, testable without Docker)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import anyio

from .._errors import InvocationTimeout

__all__ = ("Candidate", "Router", "pick")


class Candidate(Protocol):
    @property
    def has_capacity(self) -> bool: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def calls(self) -> int: ...


C = TypeVar("C", bound=Candidate)


def pick(candidates: Sequence[C | None]) -> C | None:
    """The instance to use now: free capacity, fewest calls in flight, then fewest served.

    Spreading by calls served keeps warm instances evenly used, so each
    instance's first (cold) call happens early and is visible in a run.
    """
    best: C | None = None
    best_key = (math.inf, math.inf)
    for candidate in candidates:
        if candidate is None or not candidate.has_capacity:
            continue
        key = (candidate.in_flight, candidate.calls)
        if key < best_key:
            best, best_key = candidate, key
    return best


class Router:
    """Hands out instances with free capacity; waits (bounded) when all are busy."""

    def __init__(self) -> None:
        self._changed = anyio.Event()
        self._waiting = 0

    def notify(self) -> None:
        """Something freed up or came up: wake every waiter to look again."""
        if self._waiting:  # on the hot path: no waiter, nothing to do
            self._changed.set()
            self._changed = anyio.Event()

    async def acquire(
        self,
        function: str,
        candidates: Sequence[C | None] | Callable[[], Sequence[C | None]],
        timeout: float,
    ) -> C:
        """A free instance, waiting up to ``timeout``.

        ``candidates`` may be a function returning the instances now: a
        position refilled while we wait (a replaced container) holds a new
        instance, which a list taken before waiting would not show.
        """
        current = candidates if callable(candidates) else lambda: candidates
        chosen = pick(current())
        if chosen is not None:
            return chosen
        self._waiting += 1
        try:
            with anyio.move_on_after(timeout):
                while True:
                    await self._changed.wait()
                    chosen = pick(current())
                    if chosen is not None:
                        return chosen
        finally:
            self._waiting -= 1
        raise InvocationTimeout(
            f"{function}: no instance was free within {timeout:g} s "
            f"({len(current())} instance(s), all busy or restarting)"
        )
