"""Gatherer: look-ups that arrive while others are on their way go together, and only then."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping

import pytest

from certcheck.registry.gather import Gatherer

caller_var: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


class Database:
    """Answers each number with its upper-case self once `release()` lets the read end."""

    def __init__(self) -> None:
        self.reads: list[list[str]] = []
        self.seen_context: list[str] = []
        self.fail: Exception | None = None
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()

    async def read(self, numbers: list[str]) -> Mapping[str, str]:
        self.reads.append(numbers)
        self.seen_context.append(caller_var.get())
        await self._gate.wait()
        if self.fail is not None:
            raise self.fail
        return {no: no.upper() for no in numbers}


async def started() -> None:
    """Let every caller run up to its wait."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_caller_alone_reads_at_once_and_gets_its_numbers() -> None:
    db = Database()
    db.release()
    gatherer = Gatherer(db.read, lanes=2, most=10)

    assert await gatherer.get(["a", "b"]) == {"a": "A", "b": "B"}
    assert db.reads == [["a", "b"]]


async def test_callers_that_find_every_lane_busy_go_together_in_the_next_read() -> None:
    db = Database()
    gatherer = Gatherer(db.read, lanes=2, most=10)
    first = [asyncio.create_task(gatherer.get([no])) for no in ("a", "b")]
    await started()
    waiting = [asyncio.create_task(gatherer.get([no])) for no in ("c", "d", "e")]
    await started()

    assert db.reads == [["a"], ["b"]]  # both lanes taken, the other three wait
    db.release()
    answers = await asyncio.gather(*first, *waiting)

    assert answers == [{"a": "A"}, {"b": "B"}, {"c": "C"}, {"d": "D"}, {"e": "E"}]
    assert db.reads == [["a"], ["b"], ["c", "d", "e"]]


async def test_a_number_asked_by_two_waiting_callers_is_read_once() -> None:
    db = Database()
    gatherer = Gatherer(db.read, lanes=1, most=10)
    busy = asyncio.create_task(gatherer.get(["a"]))
    await started()
    both = [asyncio.create_task(gatherer.get(nos)) for nos in (["b", "c"], ["c", "d"])]
    await started()
    db.release()

    assert await asyncio.gather(busy, *both) == [
        {"a": "A"},
        {"b": "B", "c": "C"},
        {"c": "C", "d": "D"},
    ]
    assert db.reads == [["a"], ["b", "c", "d"]]


async def test_a_read_gathers_at_most_most_numbers_and_never_splits_a_caller() -> None:
    db = Database()
    gatherer = Gatherer(db.read, lanes=1, most=4)
    busy = asyncio.create_task(gatherer.get(["a"]))
    await started()
    asks = [["b", "c"], ["d", "e"], ["f", "g", "h"], ["i"]]
    waiting = [asyncio.create_task(gatherer.get(nos)) for nos in asks]
    await started()
    db.release()
    answers = await asyncio.gather(busy, *waiting)

    assert [sorted(a) for a in answers] == [["a"], *asks]
    assert db.reads == [["a"], ["b", "c", "d", "e"], ["f", "g", "h", "i"]]


async def test_a_failed_read_fails_every_caller_in_it_and_the_next_read_is_new() -> None:
    db = Database()
    db.fail = OSError("connection reset")
    gatherer = Gatherer(db.read, lanes=1, most=10)
    callers = [asyncio.create_task(gatherer.get([no])) for no in ("a", "b", "c")]
    await started()
    db.release()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)

    assert [type(o) for o in outcomes] == [OSError, OSError, OSError]
    db.fail = None
    assert await gatherer.get(["d"]) == {"d": "D"}
    assert db.reads == [["a"], ["b", "c"], ["d"]]


async def test_a_caller_that_stops_waiting_leaves_the_others_answered() -> None:
    db = Database()
    gatherer = Gatherer(db.read, lanes=1, most=10)
    busy = asyncio.create_task(gatherer.get(["a"]))
    await started()
    gone = asyncio.create_task(gatherer.get(["b"]))
    stays = asyncio.create_task(gatherer.get(["c"]))
    await started()
    gone.cancel()
    db.release()

    assert list(await asyncio.gather(busy, stays)) == [{"a": "A"}, {"c": "C"}]
    assert gone.cancelled()
    assert db.reads == [["a"], ["c"]]  # a number nobody waits for any more is not read


async def test_the_read_runs_outside_every_callers_context() -> None:
    # A request's database budget lives in a context variable: the read serves several
    # requests, so none of their budgets may cut it short.
    db = Database()
    db.release()
    gatherer = Gatherer(db.read, lanes=1, most=10)
    caller_var.set("request 1")

    assert await gatherer.get(["a"]) == {"a": "A"}
    assert db.seen_context == ["nobody"]


@pytest.mark.parametrize("lanes", [1, 3])
async def test_no_more_reads_are_on_their_way_than_lanes(lanes: int) -> None:
    db = Database()
    gatherer = Gatherer(db.read, lanes=lanes, most=10)
    callers = [asyncio.create_task(gatherer.get([str(n)])) for n in range(20)]
    await started()

    assert len(db.reads) == lanes
    db.release()
    answers = await asyncio.gather(*callers)
    assert answers == [{str(n): str(n)} for n in range(20)]
    assert len(db.reads) == lanes + 2  # the other 17 in reads of at most 10
