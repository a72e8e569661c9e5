"""The processor as `serve` runs it: events follow a commit made elsewhere within 10 seconds."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.verification.records import Status
from tests.conftest import load
from tests.watch.helpers import A, all_events, ndjson, put, registry


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The longest poll allowed: the event must come from noticing the new generation, not a poll.
    return Settings(database_url=database_url, max_registry_age=3600, watch_poll_interval=5)


async def test_an_import_by_another_process_reaches_the_events_within_ten_seconds(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    await load(engine, registry())
    await client.get("/readyz")
    await put(client, shop, ndjson([{"listing_id": "l1", "cert_no": A}]))
    await load(engine, registry(status=Status.SUSPENDED))  # as `certcheck import` would
    committed = time.monotonic()
    while not (events := await all_events(client, shop)):
        assert time.monotonic() - committed < 10, "no event within 10 s of the commit"
        await asyncio.sleep(0.1)
    assert [(e["listing_id"], e["new_decision"], e["reason"]) for e in events] == [
        ("l1", "block", "SUSPENDED")
    ]
    await asyncio.sleep(0.5)
    assert len(await all_events(client, shop)) == 1
