"""Helpers of the webhook tests: registering, making events, waiting for deliveries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.verification.records import Certificate
from certcheck.watch.delivery import DeliveryConfig
from certcheck.watch.outbox import RetryPolicy
from certcheck.watch.processor import WatchProcessor
from tests.conftest import load
from tests.watch.helpers import drain

WEBHOOK = "/v1/watch/webhook"


async def register(client: httpx.AsyncClient, headers: dict[str, str], url: str) -> str:
    """Register `url`; the secret."""
    response = await client.put(WEBHOOK, json={"url": url}, headers=headers)
    assert response.status_code == 200, response.text
    secret: str = response.json()["secret"]
    return secret


async def status(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(WEBHOOK, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def change(engine: AsyncEngine, watcher: WatchProcessor, certs: list[Certificate]) -> None:
    """Import `certs` as the registry and record the events it makes, as `serve` would."""
    await load(engine, certs)
    assert await drain(watcher) >= 1


async def until(done: Callable[[], bool], *, within: float = 15.0, what: str = "") -> float:
    """Wait until `done()`; the seconds it took."""
    start = time.monotonic()
    while not done():
        assert time.monotonic() - start < within, f"not within {within} s: {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def quick(*, allow_private: bool = True, slots: int = 4, period: float = 3600.0) -> DeliveryConfig:
    """A delivery config for a worker of the test's own (another serve process)."""
    retry = RetryPolicy(period=timedelta(seconds=period), base=0.05)
    return DeliveryConfig(slots=slots, poll_interval=0.02, allow_private=allow_private, retry=retry)
