"""ULIDs as strings, made cheaply: check ids and request ids are minted on every request.

python-ulid's `str(ULID())` costs ~4 µs and a `getrandom` call per id; that call releases the
GIL, so on a busy process every id is a chance for another thread (the log writer, the SQLite
driver) to take the interpreter away from the request. Here randomness is read from the
kernel 4 KiB at a time, the time comes from the clock read the caller already made, and the
text is built from a table of 10-bit pairs. Like python-ulid's default generator, a second id
in the same millisecond is the previous one plus one, so ids made in one process sort in the
order they were made. A batch's ids (`new_ulids`) are such a run, taken at once: they differ
only in their last two characters within each 1,024, so the rest is written once per 1,024.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> two characters
_RANDOM_BYTES = 10  # 80 bits of randomness after the 48-bit millisecond time
_POOL_BYTES = 4096
_RANDOM_LIMIT = 1 << 80


class _Generator:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # job workers' threads and the event loop share it
        self._pool = b""
        self._used = 0
        self._last_ms = -1
        self._last_random = 0
        self._last_text = ""  # what `new` made of the two above; "" when it did not make it

    def _random(self) -> int:
        if self._used + _RANDOM_BYTES > len(self._pool):
            self._pool, self._used = os.urandom(_POOL_BYTES), 0
        start = self._used
        self._used += _RANDOM_BYTES
        return int.from_bytes(self._pool[start : self._used], "big")

    def new(self, ms: int) -> str:
        with self._lock:
            if ms == self._last_ms and self._last_random + 1 < _RANDOM_LIMIT:
                random = self._last_random + 1  # same millisecond: one more than the last id
                low = random & 1023
                # Up to the next 1,024 only the last two characters change: a busy process
                # makes most of its ids in a millisecond that already has one.
                text = (
                    self._last_text[:-2] + _PAIRS[low]
                    if low and self._last_text
                    else _encode(ms, random)
                )
            else:
                random = self._random()
                text = _encode(ms, random)
            self._last_ms, self._last_random, self._last_text = ms, random, text
        return text

    def new_run(self, ms: int, count: int) -> list[str]:
        with self._lock:
            if ms == self._last_ms and self._last_random + count < _RANDOM_LIMIT:
                first = self._last_random + 1
            else:
                first = self._random()
                while first + count > _RANDOM_LIMIT:  # too near the top for the run to fit
                    first = self._random()
            self._last_ms, self._last_random, self._last_text = ms, first + count - 1, ""
        made: list[str] = []
        random, end = first, first + count
        while random < end:
            stop = min(end, (random | 1023) + 1)
            head = _encode(ms, random)[:-2]  # the same for every id up to `stop`
            made.extend([head + pair for pair in _PAIRS[random & 1023 : ((stop - 1) & 1023) + 1]])
            random = stop
        return made


def _encode(ms: int, random: int) -> str:
    """The ULID of a millisecond time and 80 random bits: 130 bits (the first 2 zero, then the
    time, then the random bits) as 13 pairs of 10 bits, 26 Crockford base32 characters.

    Taken from the time and two 40-bit halves of the random bits, every value fits a machine
    word; shifted as one 128-bit integer, each step made a new big integer (~10 k instructions
    an id, compiled: bench.instructions)."""
    p = _PAIRS
    high, low = random >> 40, random & _LOW_40
    return (
        f"{p[ms >> 40]}{p[(ms >> 30) & 1023]}{p[(ms >> 20) & 1023]}{p[(ms >> 10) & 1023]}"
        f"{p[ms & 1023]}{p[high >> 30]}{p[(high >> 20) & 1023]}{p[(high >> 10) & 1023]}"
        f"{p[high & 1023]}{p[low >> 30]}{p[(low >> 20) & 1023]}{p[(low >> 10) & 1023]}"
        f"{p[low & 1023]}"
    )


_LOW_40 = (1 << 40) - 1


_generator = _Generator()


def new_ulid(at: datetime | None = None) -> str:
    """A new ULID; its time is `at` (an aware datetime the caller already read) or now."""
    ms = time.time_ns() // 1_000_000 if at is None else int(at.timestamp() * 1000)
    return _generator.new(ms)


def new_ulids(count: int, at: datetime) -> list[str]:
    """`count` new ULIDs at `at`, as `new_ulid` would make them one after another."""
    return _generator.new_run(int(at.timestamp() * 1000), count)
