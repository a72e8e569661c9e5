"""Helpers of the listing watch tests: a small registry, uploads, reads, and processors of their
own (as other serve processes would run them)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.checking import Checker
from certcheck.db.tables import watch_events
from certcheck.registry.store import RegistryStore
from certcheck.verification.catalogue import load_catalogue
from certcheck.verification.records import Certificate
from certcheck.watch.processor import WatchConfig, WatchProcessor
from tests.factories import cert

NDJSON = "application/x-ndjson"
A = "2024010901000001"  # the number the tests revoke
B = "2024010901000002"


def registry(**a_changes: Any) -> list[Certificate]:
    """A and B, valid unless changed as given; `drop_a=True` leaves A out."""
    drop_a = a_changes.pop("drop_a", False)
    certs = [cert(B)]
    if not drop_a:
        certs.insert(0, cert(A, **a_changes))
    return certs


def ndjson(items: Iterable[dict[str, Any] | str]) -> bytes:
    lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
    return ("\n".join(lines) + "\n").encode()


async def put(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes, **extra: str
) -> dict[str, Any]:
    response = await client.put(
        "/v1/watch/listings", content=body, headers={**headers, "Content-Type": NDJSON, **extra}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def all_events(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/v1/watch/events", headers=headers, params={"limit": 1000})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def stored_events(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(select(watch_events).order_by(watch_events.c.seq)))


async def processor(engine: AsyncEngine) -> WatchProcessor:
    """A processor of its own, as another serve process would run one."""
    store = RegistryStore(
        engine, cache_size=1000, cache_ttl=60, max_age=timedelta(hours=1), db_timeout=5
    )
    await store.refresh()
    config = WatchConfig(enabled=False, poll_interval=0.1, feed_batch=1000, retention=timedelta(30))
    return WatchProcessor(engine, Checker(store, load_catalogue(None)), config)


async def drain(watcher: WatchProcessor) -> int:
    """Run rounds until there is nothing left to do; how many did work."""
    rounds = 0
    while await watcher.run_once():
        rounds += 1
    return rounds
