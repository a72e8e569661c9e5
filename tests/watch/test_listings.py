"""Watched listings over HTTP: upload (NDJSON, gzip), invalid lines, read, delete, platforms."""

from __future__ import annotations

import gzip

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import load
from tests.watch.helpers import NDJSON, A, B, ndjson, put, registry, stored_events


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, registry())
    await client.get("/readyz")


@pytest.mark.usefixtures("loaded")
async def test_upload_stores_each_listing_with_its_current_decision(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> None:
    answer = await put(
        client,
        shop,
        ndjson(
            [
                {"listing_id": "l1", "cert_no": A},
                {"listing_id": "l2", "cert_no": f" {B[:8]} {B[8:]} ", "model": "ZZ-9"},
                {"listing_id": "l3", "cert_no": "2024010909999999"},
                {"listing_id": "l4", "cert_no": "12345"},
            ]
        ),
    )
    assert answer == {"upserted": 4, "invalid_lines": [], "invalid_count": 0}
    got = {
        lid: (await client.get(f"/v1/watch/listings/{lid}", headers=shop)).json()
        for lid in ("l1", "l2", "l3", "l4")
    }
    assert {lid: (g["cert_no"], g["decision"], g["reason"]) for lid, g in got.items()} == {
        "l1": (A, "allow", "VALID"),
        "l2": (B, "review", "MODEL_NOT_COVERED"),
        "l3": ("2024010909999999", "block", "NOT_FOUND"),
        "l4": ("12345", "block", "MALFORMED"),
    }
    assert set(got["l1"]) == {"listing_id", "cert_no", "decision", "reason", "since"}
    assert await stored_events(engine) == []  # an upsert records no event


@pytest.mark.usefixtures("loaded")
async def test_invalid_lines_are_reported_by_line_number_and_lose_nothing_else(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    body = ndjson(
        [
            {"listing_id": "l1", "cert_no": A},
            "",  # line 2: blank, counted
            "not json",
            '["an", "array"]',
            {"cert_no": A},
            {"listing_id": "l6", "cert_no": "  "},
            {"listing_id": "l7", "cert_no": A, "colour": "red"},
            '{"listing_id": "l8", "listing_id": "l9", "cert_no": "' + A + '"}',
            '{"listing_id": "nul\\u0000", "cert_no": "' + A + '"}',
            {"listing_id": "l10", "cert_no": B},
        ]
    )
    answer = await put(client, shop, body)
    codes = [(item["line"], item["code"]) for item in answer["invalid_lines"]]
    assert codes == [
        (3, "MALFORMED"),
        (4, "MALFORMED"),
        (5, "MISSING_FIELD"),
        (6, "MISSING_FIELD"),
        (7, "MALFORMED"),
        (8, "MALFORMED"),
        (9, "MALFORMED"),
    ]
    assert all(item["detail"] for item in answer["invalid_lines"])
    assert (answer["upserted"], answer["invalid_count"]) == (2, 7)
    for lid, status in (("l1", 200), ("l10", 200), ("l7", 404), ("l9", 404)):
        response = await client.get(f"/v1/watch/listings/{lid}", headers=shop)
        assert response.status_code == status, lid


@pytest.mark.usefixtures("loaded")
async def test_the_last_line_for_a_listing_wins_across_chunks_and_since_follows_the_decision(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    # job_chunk_lines is 3: the repeats fall in the same chunk and in later ones.
    lines = [
        {"listing_id": "l1", "cert_no": A, "model": "nope"},
        {"listing_id": "l1", "cert_no": B},
        {"listing_id": "l2", "cert_no": A},
        {"listing_id": "l3", "cert_no": A},
        {"listing_id": "l1", "cert_no": A},
    ]
    await put(client, shop, gzip.compress(ndjson(lines)), **{"Content-Encoding": "gzip"})
    first = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    assert (first["cert_no"], first["decision"]) == (A, "allow")
    await put(client, shop, ndjson([{"listing_id": "l1", "cert_no": B}]))
    same = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    assert (same["cert_no"], same["since"]) == (B, first["since"])  # still allow: since kept
    await put(client, shop, ndjson([{"listing_id": "l1", "cert_no": B, "model": "nope"}]))
    moved = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    assert moved["decision"] == "review"
    assert moved["since"] > first["since"]


@pytest.mark.usefixtures("loaded")
async def test_a_listing_belongs_to_the_platform_that_put_it(
    client: httpx.AsyncClient, shop: dict[str, str], other: dict[str, str]
) -> None:
    await put(client, shop, ndjson([{"listing_id": "l1", "cert_no": A}]))
    assert (await client.get("/v1/watch/listings/l1", headers=other)).status_code == 404
    gone = await client.delete("/v1/watch/listings/l1", headers=other)
    assert (gone.status_code, gone.json()["code"]) == (404, "LISTING_NOT_WATCHED")
    await put(client, other, ndjson([{"listing_id": "l1", "cert_no": B, "model": "x"}]))
    mine = (await client.get("/v1/watch/listings/l1", headers=shop)).json()
    theirs = (await client.get("/v1/watch/listings/l1", headers=other)).json()
    assert (mine["cert_no"], theirs["cert_no"]) == (A, B)


@pytest.mark.usefixtures("loaded")
async def test_delete_stops_watching(client: httpx.AsyncClient, shop: dict[str, str]) -> None:
    await put(client, shop, ndjson([{"listing_id": "l1", "cert_no": A}]))
    deleted = await client.delete("/v1/watch/listings/l1", headers=shop)
    assert (deleted.status_code, deleted.content) == (204, b"")
    missing = await client.get("/v1/watch/listings/l1", headers=shop)
    assert (missing.status_code, missing.json()["code"]) == (404, "LISTING_NOT_WATCHED")
    again = await client.delete("/v1/watch/listings/l1", headers=shop)
    assert again.status_code == 404


@pytest.mark.usefixtures("loaded")
@pytest.mark.parametrize(
    ("headers", "code", "status"),
    [
        ({"Content-Type": "text/csv"}, "UNSUPPORTED_MEDIA_TYPE", 415),
        ({"Content-Type": NDJSON, "Content-Encoding": "br"}, "UNSUPPORTED_CONTENT_ENCODING", 415),
        ({"Content-Type": NDJSON, "Content-Encoding": "gzip"}, "INVALID_GZIP", 422),
    ],
)
async def test_an_upload_that_cannot_be_read_is_refused_whole(
    client: httpx.AsyncClient, shop: dict[str, str], headers: dict[str, str], code: str, status: int
) -> None:
    body = ndjson([{"listing_id": "l1", "cert_no": A}])
    response = await client.put("/v1/watch/listings", content=body, headers={**shop, **headers})
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert (await client.get("/v1/watch/listings/l1", headers=shop)).status_code == 404


async def test_watching_needs_the_batch_scope(
    client: httpx.AsyncClient, verify_only: dict[str, str]
) -> None:
    body = ndjson([{"listing_id": "l1", "cert_no": A}])
    put_ = await client.put("/v1/watch/listings", content=body, headers=verify_only)
    events = await client.get("/v1/watch/events", headers=verify_only)
    assert (put_.status_code, events.status_code) == (403, 403)
