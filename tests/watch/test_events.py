"""Events: a registry change turns into exactly the expected events, once, in cursor order."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.engine import create_engine
from certcheck.db.tables import certificates, watch_cursors, watched_listings
from certcheck.keys import Scope
from certcheck.verification.records import Status
from certcheck.watch import rounds
from tests.conftest import load, make_key, today
from tests.watch.helpers import (
    A,
    B,
    all_events,
    drain,
    ndjson,
    processor,
    put,
    registry,
    stored_events,
)

WATCHED = [
    {"listing_id": "l1", "cert_no": A},
    {"listing_id": "l2", "cert_no": A, "model": "not-on-it"},  # review
    {"listing_id": "l3", "cert_no": B},
]


@pytest.fixture
async def watched(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str], other: dict[str, str]
) -> None:
    await load(engine, registry())
    await client.get("/readyz")
    await put(client, shop, ndjson(WATCHED))
    await put(client, other, ndjson([{"listing_id": "o1", "cert_no": A}]))


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (e["listing_id"], e["old_decision"], e["new_decision"], e["reason"]) for e in events
    )


@pytest.mark.usefixtures("watched")
@pytest.mark.parametrize(
    "change", [{"status": Status.REVOKED}, {"drop_a": True}], ids=["revoked", "removed"]
)
async def test_a_revocation_produces_exactly_the_expected_events(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    shop: dict[str, str],
    other: dict[str, str],
    change: dict[str, Any],
) -> None:
    watcher = await processor(engine)
    assert await drain(watcher) == 0  # the upserts recorded nothing and left nothing to do
    await load(engine, registry(**change))
    assert await drain(watcher) == 1
    reason = "REVOKED" if "status" in change else "NOT_FOUND"
    mine = await all_events(client, shop)
    assert summary(mine) == [
        ("l1", "allow", "block", reason),
        ("l2", "review", "block", reason),
    ]
    assert {e["cert_no"] for e in mine} == {A}
    assert all(len(e["event_id"]) == 26 and len(e["check_id"]) == 26 for e in mine)
    assert summary(await all_events(client, other)) == [("o1", "allow", "block", reason)]
    listing = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    assert (listing["decision"], listing["reason"]) == ("block", reason)
    assert listing["since"] == next(e["created_at"] for e in mine if e["listing_id"] == "l1")
    await load(engine, registry(**change))  # the same registry again: nothing changes
    await drain(watcher)
    assert len(await stored_events(engine)) == 3


@pytest.mark.usefixtures("watched")
async def test_a_new_reason_under_the_same_decision_updates_without_an_event(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    watcher = await processor(engine)
    await load(engine, registry(status=Status.REVOKED))
    await drain(watcher)
    before = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    await load(engine, registry(drop_a=True))
    await drain(watcher)
    after = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    assert (after["reason"], after["since"]) == ("NOT_FOUND", before["since"])
    assert len(await stored_events(engine)) == 3
    await load(engine, registry())  # back in force: one more event each
    await drain(watcher)
    assert summary((await all_events(client, shop))[-2:]) == [
        ("l1", "block", "allow", "VALID"),
        ("l2", "block", "review", "MODEL_NOT_COVERED"),
    ]
    assert len(await stored_events(engine)) == 6


@pytest.mark.usefixtures("watched")
async def test_a_deleted_listing_gets_no_event(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    assert (await client.delete("/v1/watch/listings/l1", headers=shop)).status_code == 204
    await load(engine, registry(status=Status.SUSPENDED))
    await drain(await processor(engine))
    assert summary(await all_events(client, shop)) == [("l2", "review", "block", "SUSPENDED")]


@pytest.mark.usefixtures("watched")
@pytest.mark.parametrize("how", ["error", "cancel"])
async def test_a_round_cut_short_loses_and_repeats_nothing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    shop: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    watcher = await processor(engine)
    await load(engine, registry(status=Status.REVOKED))
    written = asyncio.Event()
    original = rounds.write_events

    async def cut_short(conn: Any, events: list[dict[str, Any]]) -> None:
        await original(conn, events)  # the events are in the transaction; the cursor not moved
        written.set()
        if how == "error":
            raise RuntimeError("the process dies here")
        await asyncio.Event().wait()  # until cancelled

    monkeypatch.setattr(rounds, "write_events", cut_short)
    task = asyncio.create_task(watcher.run_once())
    await written.wait()
    if how == "cancel":
        task.cancel()
    with pytest.raises(RuntimeError if how == "error" else asyncio.CancelledError):
        await task
    assert await stored_events(engine) == []
    listing = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    assert listing["decision"] == "allow"  # the listing's new decision rolled back with them
    monkeypatch.undo()
    await drain(watcher)
    assert summary(await all_events(client, shop)) == [
        ("l1", "allow", "block", "REVOKED"),
        ("l2", "review", "block", "REVOKED"),
    ]


@pytest.mark.usefixtures("watched")
async def test_processors_of_several_processes_share_the_work_without_repeating_it(
    client: httpx.AsyncClient, engine: AsyncEngine, database_url: str, shop: dict[str, str]
) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        watchers = [await processor(e) for e in engines]
        for status in (Status.REVOKED, Status.VALID, Status.SUSPENDED):
            await load(engine, registry(status=status))
            await asyncio.gather(*(drain(w) for w in watchers))
    finally:
        for e in engines:
            await e.dispose()
    assert len(await stored_events(engine)) == 3 * 3  # l1, l2 and o1, each time
    assert [
        e["new_decision"] for e in await all_events(client, shop) if e["listing_id"] == "l1"
    ] == [
        "block",
        "allow",
        "block",
    ]


@pytest.mark.usefixtures("watched")
async def test_paging_with_next_never_misses_nor_repeats(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    watcher = await processor(engine)
    await put(client, shop, ndjson({"listing_id": f"m{i}", "cert_no": A} for i in range(20)))
    seen: list[str] = []
    since: str | None = None
    for round_no, status in enumerate((Status.REVOKED, Status.VALID, Status.CANCELLED)):
        await load(engine, registry(status=status))
        await drain(watcher)
        while True:
            params: dict[str, Any] = {"limit": 7, **({"since": since} if since else {})}
            page = (await client.get("/v1/watch/events", headers=shop, params=params)).json()
            seen += [e["event_id"] for e in page["events"]]
            if not page["events"]:
                assert page["next"] == since  # nothing new: the cursor stays
                break
            since = page["next"]
        assert len(seen) == 22 * (round_no + 1)
    assert len(set(seen)) == len(seen)
    assert seen == sorted(seen)  # ULIDs of one process grow: oldest first


@pytest.mark.usefixtures("watched")
async def test_a_cursor_this_service_did_not_issue_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str], other: dict[str, str]
) -> None:
    await load(engine, registry(status=Status.REVOKED))
    await drain(await processor(engine))
    theirs = (await client.get("/v1/watch/events", headers=other)).json()["next"]
    for cursor in ("12", "w1.", "w1.AAAAAAAAAAE", theirs, theirs[:-1] + "A", "x" * 200):
        response = await client.get("/v1/watch/events", headers=shop, params={"since": cursor})
        assert (response.status_code, response.json()["code"]) == (422, "INVALID_CURSOR"), cursor
    mine = (await client.get("/v1/watch/events", headers=shop)).json()["next"]
    again = await client.get("/v1/watch/events", headers=shop, params={"since": mine})
    assert again.json() == {"events": [], "next": mine}


@pytest.mark.usefixtures("watched")
async def test_the_daily_pass_decides_again_listings_whose_certificate_expired(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    watcher = await processor(engine)
    await drain(watcher)  # the cursor exists; its last expiry pass is today
    # A expired yesterday; l1 was decided allow (l2 review) the day before, when it was in force.
    # Time passed, the record did not change: no change entry, only the daily pass sees it.
    async with engine.begin() as conn:
        await conn.execute(
            update(certificates)
            .where(certificates.c.cert_no == A)
            .values(expires_on=today() - timedelta(days=1))
        )
        await conn.execute(update(watch_cursors).values(expiry_day=today() - timedelta(days=1)))
        await conn.execute(
            update(watched_listings)
            .where(watched_listings.c.listing_id == "l1")
            .values(decision="allow", reason="VALID")
        )
        position = (await conn.execute(select(watch_cursors.c.change_id))).scalar_one()
    assert await drain(watcher) == 1
    assert summary(await all_events(client, shop)) == [
        ("l1", "allow", "block", "EXPIRED"),
        ("l2", "review", "block", "EXPIRED"),
    ]
    async with engine.connect() as conn:
        cursor = (await conn.execute(select(watch_cursors))).one()
    assert (cursor.change_id, cursor.expiry_day) == (position, today())


@pytest.mark.usefixtures("watched")
async def test_every_watch_decision_is_a_check_record_its_platform_can_read(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    async with engine.connect() as conn:
        put_check = await conn.scalar(
            select(watched_listings.c.check_id).where(watched_listings.c.listing_id == "l1")
        )
    reader = {"Authorization": f"Bearer {await make_key(engine, Scope.VERIFY, platform='shop')}"}
    watcher = await processor(engine)
    await load(engine, registry(status=Status.REVOKED))
    assert await drain(watcher) == 1
    (event,) = [e for e in await all_events(client, shop) if e["listing_id"] == "l1"]

    answer = await client.get(f"/v1/checks/{put_check}", headers=reader)
    assert answer.status_code == 200, answer.text
    uploaded = answer.json()
    assert (uploaded["source"], uploaded["decision"], uploaded["job_id"]) == (
        "batch",
        "allow",
        None,
    )
    assert uploaded["request"] == {
        "cert_no": A,
        "product_code": None,
        "model": None,
        "manufacturer": None,
        "listing_id": "l1",
        "merchant_id": None,
    }
    decided = (await client.get(f"/v1/checks/{event['check_id']}", headers=reader)).json()
    assert (decided["source"], decided["decision"], decided["reason"]) == (
        "job",
        "block",
        "REVOKED",
    )
    assert decided["request"]["listing_id"] == "l1"
    assert decided["platform"] == "shop"
    stranger = {"Authorization": f"Bearer {await make_key(engine, Scope.VERIFY, platform='other')}"}
    missing = await client.get(f"/v1/checks/{event['check_id']}", headers=stranger)
    assert missing.status_code == 404


async def test_a_record_changed_under_the_same_status_is_decided_again_but_not_a_status_change(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    await load(engine, registry())
    await client.get("/readyz")
    reader = {"Authorization": f"Bearer {await make_key(engine, Scope.VERIFY, platform='shop')}"}
    changes_before = (await client.get("/v1/changes", headers=reader)).json()["changes"]
    await put(client, shop, ndjson([{"listing_id": "m1", "cert_no": A, "model": "XK-200S"}]))
    watcher = await processor(engine)
    await drain(watcher)
    await load(engine, registry(models=("XK-200",)))  # XK-200S dropped; still valid
    assert await drain(watcher) == 1
    assert summary(await all_events(client, shop)) == [
        ("m1", "allow", "review", "MODEL_NOT_COVERED")
    ]
    # GET /v1/changes lists status changes only: this one is not.
    assert (await client.get("/v1/changes", headers=reader)).json()["changes"] == changes_before
