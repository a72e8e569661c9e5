"""Cache-missing look-ups that arrive together go to the database together.

A busy worker has dozens of checks between reading their body and answering, and each one
whose number missed the cache made a look-up of its own: a pooled connection checked out and a
round trip for one row, most of a cold check's CPU. Here at most `lanes` look-ups are on their
way at once; the misses that arrive meanwhile wait for a lane and then go together, as one
statement. A check that finds a lane free goes at once, so an idle worker answers as soon as
before and a busy one makes fewer, larger look-ups.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class Gatherer(Generic[V]):
    def __init__(
        self,
        read: Callable[[list[str]], Awaitable[Mapping[str, V]]],
        *,
        lanes: int,
        most: int,
    ) -> None:
        """`read(numbers)` answers for every number it is given; `most`: the numbers one read
        gathers at most (a waiting caller is never split across two)."""
        self._read = read
        self._lanes = lanes
        self._most = most
        self._running = 0
        self._waiting: deque[tuple[list[str], asyncio.Future[dict[str, V]]]] = deque()
        self._reads: set[asyncio.Task[None]] = set()

    async def get(self, numbers: list[str]) -> dict[str, V]:
        """The answers for `numbers`, from the read that gathered them."""
        waiter: asyncio.Future[dict[str, V]] = asyncio.get_running_loop().create_future()
        self._waiting.append((numbers, waiter))
        if self._running < self._lanes:
            self._start()
        # A caller cancelled (its deadline, its client gone) cancels only its own future.
        return await waiter

    def _start(self) -> None:
        batch: list[tuple[list[str], asyncio.Future[dict[str, V]]]] = []
        numbers: dict[str, None] = {}
        while self._waiting and (
            not numbers or len(numbers) + len(self._waiting[0][0]) <= self._most
        ):
            asked, waiter = self._waiting.popleft()
            if not waiter.done():
                batch.append((asked, waiter))
                numbers.update(dict.fromkeys(asked))
        if not batch:
            return
        self._running += 1
        # A context of its own: the read is nobody's request, so no caller's database budget
        # (db/deadline.py) applies to it; each caller's own deadline bounds its wait.
        read = asyncio.get_running_loop().create_task(
            self._run(list(numbers), batch), context=contextvars.Context()
        )
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)

    async def _run(
        self, numbers: list[str], batch: list[tuple[list[str], asyncio.Future[dict[str, V]]]]
    ) -> None:
        try:
            found = await self._read(numbers)
        except asyncio.CancelledError:
            for _, waiter in batch:
                waiter.cancel()
            raise
        except Exception as exc:
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(exc)
                    # Seen here, so a caller that stopped waiting leaves no "never retrieved"
                    # warning behind; one still waiting gets the exception all the same.
                    waiter.exception()
        else:
            for asked, waiter in batch:
                if not waiter.done():
                    waiter.set_result({no: found[no] for no in asked})
        finally:
            self._running -= 1
            if self._waiting:
                self._start()
