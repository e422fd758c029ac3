"""Exception groups from task groups, as one error a user can read."""

from __future__ import annotations

import anyio

from .._errors import FaaslabError

__all__ = ("first_error",)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a user should see from a group: the first faaslab error, else the group.

    Task groups wrap errors; a failed start should read as the one instance
    that failed, not as a tree of cancellations.
    """
    leaves = _leaves(group)
    for leaf in leaves:
        if isinstance(leaf, FaaslabError):
            return leaf
    non_cancel = [e for e in leaves if not isinstance(e, anyio.get_cancelled_exc_class())]
    if len(non_cancel) == 1:
        return non_cancel[0]
    return group
