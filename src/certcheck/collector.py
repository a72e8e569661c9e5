"""Pausing the cyclic garbage collector while a batch of checks or check records is made
(a job chunk on PostgreSQL only: jobs/worker.py says why).

A 5,000-line job chunk makes ~30,000 tuples that live until the chunk commits (its records,
membership rows and signal keys): each 700 of them started a young collection, and every
tenth of those a middle one walking all the survivors; full collections came with them. That
was ~1/3 of what records cost a job. A batch request of 10,000 items is the same: its items,
checks and certificates live until it is answered, and the collector walked them ~3 us an item
(13.8 ms a full collection, one a batch; bench/README.md, twenty-third pass). Made with the
collector paused, they are freed by reference counting when the batch is done, before any
collection sees them; only cycles wait.

Several holders may pause at once (the event loop's requests, the worker threads): the
collector resumes when the last one is done, and only if it ran before the first began. Holders
that overlap without a break would keep it paused for ever, so after LONGEST seconds the next
holder to finish resumes it, and it stays on until a moment without holders.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

LONGEST = 2.0  # seconds the collector stays paused at a stretch

_lock = threading.Lock()
_holders = 0
_resume = False  # whether the collector is to be enabled again (it ran before the pause)
_since = 0.0
_clock = time.monotonic


@contextlib.contextmanager
def paused() -> Iterator[None]:
    global _holders, _resume, _since
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            _since = _clock()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _resume and (_holders == 0 or _clock() - _since > LONGEST):
                gc.enable()
                _resume = False
