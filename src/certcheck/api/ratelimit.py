"""Per-key request limits (the `limits` library's moving window, in process memory).

Each process counts its own requests, so with N replicas a key gets up to N times the limit;
the limit protects each process from one platform's burst, it is not a billing quota.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class KeyRateLimiter:
    def __init__(self, spec: str | None) -> None:
        self._limits: list[RateLimitItem] = parse_many(spec) if spec else []
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, key_id: str) -> int | None:
        """None when the request may go ahead; else whole seconds until it may."""
        for limit in self._limits:
            if not self._limiter.hit(limit, key_id):
                reset = self._limiter.get_window_stats(limit, key_id).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None
