"""Pausing the cyclic garbage collector while a batch of check records is made.

A 5,000-line job chunk makes ~30,000 tuples that live until the chunk commits (its records,
membership rows and signal keys): each 700 of them started a young collection, and every
tenth of those a middle one walking all the survivors; full collections came with them. That
was ~1/3 of what records cost a job. Made with the collector paused, the batch is looked at
once, when it resumes. Reference counting frees everything as usual meanwhile; only cycles
wait, for the tens of milliseconds the batch takes. Several threads may pause at once: the
collector resumes when the last one is done, and only if it ran before the first began.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holders = 0
_resume = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()
