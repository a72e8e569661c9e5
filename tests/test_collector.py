"""collector.paused: the cyclic collector paused while batches are made, and resumed."""

from __future__ import annotations

import contextlib
import gc
import threading

import pytest

from certcheck import collector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_resumes_when_the_last_holder_is_done() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with collector.paused():
            inside.set()
            release.wait(5)

    other = threading.Thread(target=hold)
    other.start()
    inside.wait(5)
    with collector.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread still holds it
    release.set()
    other.join(5)
    assert gc.isenabled()


def test_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_holders_that_never_leave_a_gap_keep_it_paused_for_longest_seconds_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(collector, "_clock", clock)
    with contextlib.ExitStack() as holders:  # released whatever happens
        first = holders.enter_context(contextlib.ExitStack())
        first.enter_context(collector.paused())
        # One holder after another, each starting before the one before ends.
        for _ in range(3):
            clock.now += collector.LONGEST / 4
            second = holders.enter_context(contextlib.ExitStack())
            second.enter_context(collector.paused())
            first.close()
            first = second
            assert not gc.isenabled()
        clock.now += collector.LONGEST
        second = holders.enter_context(contextlib.ExitStack())
        second.enter_context(collector.paused())
        first.close()  # paused for longer than LONGEST: resumed now
        assert gc.isenabled()
        with collector.paused():
            assert gc.isenabled()  # and left on until a moment without holders
        second.close()
    assert gc.isenabled()
    with collector.paused():  # paused again by the next first holder
        assert not gc.isenabled()
    assert gc.isenabled()
