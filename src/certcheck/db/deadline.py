"""A deadline that returns on time even when the database call it cuts short cannot.

`asyncio.timeout` cancels the call and then waits for it to unwind; on a hung link that unwind
(closing the connection, rolling back) can outlast the deadline by seconds. `within` answers at
the deadline and lets the cancelled call finish unwinding on its own.

A request's look-ups (its key, then its certificates) share one deadline: `request_budget`
gives each request the database time it may use in all, so an answer comes within the deadline
however many look-ups it makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

from certcheck.db.outage import is_database_outage

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# Cancelled calls still unwinding: kept referenced so they are not collected mid-way.
_unwinding: set[asyncio.Task[object]] = set()


async def within(seconds: float, call: Callable[[], Awaitable[_T]]) -> _T:
    """The result of `call()`, or TimeoutError after `seconds` without waiting for its cleanup."""
    task: asyncio.Task[_T] = asyncio.ensure_future(call())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise TimeoutError(f"no answer within {seconds:g} s")
    return task.result()


async def settle(seconds: float) -> None:
    """Give abandoned calls up to `seconds` to finish unwinding (at shutdown, before the pools
    close), so none is left holding a connection when the event loop ends."""
    if _unwinding:
        await asyncio.wait(set(_unwinding), timeout=seconds)


def _abandon(task: asyncio.Task[_T]) -> None:
    task.cancel()
    _unwinding.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[object]) -> None:
    _unwinding.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("an abandoned database call ended with %r", task.exception())


class _Budget:
    __slots__ = ("left",)

    def __init__(self, seconds: float) -> None:
        self.left = seconds


_budget: ContextVar[_Budget | None] = ContextVar("certcheck_database_budget", default=None)


@contextlib.contextmanager
def request_budget(seconds: float) -> Iterator[None]:
    """Within this block (one request), deadline calls share `seconds` of database time."""
    token = _budget.set(_Budget(seconds))
    try:
        yield
    finally:
        _budget.reset(token)


class DatabaseAway(TimeoutError):
    """Not asked: the database failed a moment ago and has not answered since."""


class Deadline:
    """The real-time path's deadline, and its memory of the last outage.

    While the database is failing, a request would otherwise wait a full deadline at each of
    its look-ups (the key, then the certificates). After one outage every call fails at once
    until a probe (the registry poll, every second) gets an answer again.
    """

    def __init__(self, seconds: float, *, abandon: bool = True) -> None:
        self.seconds = seconds
        self.failing = False
        # A local SQLite file never hangs on a network: there, a cut call unwinds in place.
        self._abandon = abandon

    async def call(self, work: Callable[[], Awaitable[_T]], *, probe: bool = False) -> _T:
        if self.failing and not probe:
            raise DatabaseAway("the database did not answer a moment ago")
        budget = _budget.get()
        seconds = self.seconds if budget is None else min(self.seconds, budget.left)
        if seconds <= 0:
            raise TimeoutError("this request has used its whole deadline on the database")
        started = time.monotonic()
        try:
            if self._abandon:
                result = await within(seconds, work)
            else:
                async with asyncio.timeout(seconds):
                    result = await work()
        except Exception as exc:
            if is_database_outage(exc):
                self.failing = True
            raise
        finally:
            if budget is not None:
                budget.left -= time.monotonic() - started
        self.failing = False
        return result
