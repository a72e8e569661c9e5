"""One request's database calls share one deadline (db/deadline.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from certcheck.db.deadline import Deadline, request_budget


async def _slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "answered"


@pytest.mark.parametrize("abandon", [True, False], ids=["abandoning", "in-place"])
class TestRequestBudget:
    async def test_each_call_alone_gets_the_whole_deadline(self, abandon: bool) -> None:
        deadline = Deadline(0.5, abandon=abandon)
        assert await deadline.call(lambda: _slow(0.3)) == "answered"
        assert await deadline.call(lambda: _slow(0.3)) == "answered"

    async def test_calls_of_one_request_share_it(self, abandon: bool) -> None:
        deadline = Deadline(0.5, abandon=abandon)
        started = time.monotonic()
        with request_budget(0.5):
            assert await deadline.call(lambda: _slow(0.3)) == "answered"
            with pytest.raises(TimeoutError):
                await deadline.call(lambda: _slow(0.3))
        assert time.monotonic() - started < 0.5 + 0.1

    async def test_a_spent_budget_fails_at_once_without_marking_an_outage(
        self, abandon: bool
    ) -> None:
        deadline = Deadline(0.5, abandon=abandon)
        started = time.monotonic()
        with request_budget(0.0), pytest.raises(TimeoutError, match="whole deadline"):
            await deadline.call(lambda: _slow(0.01))
        assert time.monotonic() - started < 0.05
        assert not deadline.failing  # nothing was asked of the database: no outage seen

    async def test_the_budget_ends_with_its_block(self, abandon: bool) -> None:
        deadline = Deadline(0.5, abandon=abandon)
        with request_budget(0.1), pytest.raises(TimeoutError):
            await deadline.call(lambda: _slow(0.2))
        deadline.failing = False
        assert await deadline.call(lambda: _slow(0.3)) == "answered"
