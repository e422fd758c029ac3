"""The instance lifecycle table, exhaustively, without Docker."""

from __future__ import annotations

import itertools

import pytest

from faaslab._function._lifecycle import TRANSITIONS, InstanceState, Lifecycle, LifecycleError

S = InstanceState

EXPECTED = {
    (S.CREATED, S.STARTING),
    (S.CREATED, S.STOPPING),
    (S.CREATED, S.FAILED),
    (S.STARTING, S.READY),
    (S.STARTING, S.STOPPING),
    (S.STARTING, S.FAILED),
    (S.READY, S.BUSY),
    (S.READY, S.STOPPING),
    (S.READY, S.FAILED),
    (S.BUSY, S.READY),
    (S.BUSY, S.STOPPING),
    (S.BUSY, S.FAILED),
    (S.STOPPING, S.STOPPED),
    (S.STOPPING, S.FAILED),
    (S.FAILED, S.STOPPING),
}


def _reach(state: InstanceState) -> Lifecycle:
    """A lifecycle brought to ``state`` through legal transitions."""
    paths = {
        S.CREATED: [],
        S.STARTING: [S.STARTING],
        S.READY: [S.STARTING, S.READY],
        S.BUSY: [S.STARTING, S.READY, S.BUSY],
        S.STOPPING: [S.STOPPING],
        S.STOPPED: [S.STOPPING, S.STOPPED],
        S.FAILED: [S.FAILED],
    }
    lifecycle = Lifecycle()
    for step in paths[state]:
        lifecycle.to(step)
    assert lifecycle.state is state
    return lifecycle


def test_table_is_exactly_the_documented_one() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == EXPECTED


@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)))
def test_every_pair(source: InstanceState, target: InstanceState) -> None:
    lifecycle = _reach(source)
    if (source, target) in EXPECTED:
        assert lifecycle.can(target)
        assert lifecycle.to(target) is source
        assert lifecycle.state is target
    else:
        assert not lifecycle.can(target)
        with pytest.raises(LifecycleError, match=f"{source.value} -> {target.value}"):
            lifecycle.to(target)
        assert lifecycle.state is source


def test_stopped_is_terminal_and_failed_only_leads_to_cleanup() -> None:
    assert TRANSITIONS[S.STOPPED] == frozenset()
    assert TRANSITIONS[S.FAILED] == frozenset({S.STOPPING})


def test_serving_and_finished() -> None:
    assert {s for s in S if _reach(s).serving} == {S.READY, S.BUSY}
    assert {s for s in S if _reach(s).finished} == {S.STOPPED, S.FAILED}


def test_sandbox_refusals_are_explained_whatever_the_language() -> None:
    from faaslab._function import RemoteError
    from faaslab._function._invocation import explain_sandbox

    python = RemoteError("OSError", "[Errno 30] Read-only file system: '/etc/x'")
    node = RemoteError("Error", "EROFS: read-only file system, open '/etc/x'")
    for error in (python, node):
        explained = explain_sandbox(error, 512)
        assert explained is not None
        assert explained.message.startswith(error.message)
        assert "only /tmp is writable" in explained.message
    full = explain_sandbox(RemoteError("OSError", "[Errno 28] No space left on device"), 64)
    assert full is not None
    assert "/tmp holds 64 MB" in full.message
    other = RemoteError("ValueError", "bad input")
    assert explain_sandbox(other, 512) is other
    assert explain_sandbox(None, 512) is None
