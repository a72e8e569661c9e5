"""GET /v1/stats and GET /v1/signals over HTTP, on both databases: checks made through the API
(verify, batch, a re-check job) count within 10 s; each platform sees its own, admin all."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.evidence import store
from certcheck.keys import Scope
from certcheck.verification.numbers import today_in_shanghai
from tests.api.helpers import assert_problem, ndjson, run_job
from tests.conftest import load, make_key
from tests.evidence.test_stats_tally import checked
from tests.factories import cert

VALID = "2024010901234567"
OTHER = "2024010901234568"
COUNTS_WITHIN = 10.0  # seconds (evidence.md)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        max_registry_age=3600,
        check_flush_seconds=0.2,
        job_chunk_lines=2,
        job_poll_interval=0.1,
    )


@pytest.fixture
async def keys(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, dict[str, str]]:
    await load(engine, [cert(VALID), cert(OTHER)])
    await client.get("/readyz")

    async def bearer(*scopes: Scope, platform: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await make_key(engine, *scopes, platform=platform)}"}

    return {
        "shop": await bearer(*Scope, platform="shop"),  # verify and admin: an admin view
        "shop_verify": await bearer(Scope.VERIFY, Scope.BATCH, platform="shop"),
        "rival": await bearer(Scope.VERIFY, Scope.BATCH, platform="rival"),
        "admin": await bearer(Scope.ADMIN, platform="regulator"),
        "batch_only": await bearer(Scope.BATCH, platform="shop"),
    }


def today() -> str:
    return today_in_shanghai(datetime.now(UTC)).isoformat()


async def get_stats(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], **params: str
) -> httpx.Response:
    query = {"from": today(), "to": today(), **params}
    return await client.get(app.url_path_for("get_stats"), params=query, headers=headers)


async def stats_once(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], checks: int, **params: str
) -> dict[str, Any]:
    """The statistics once `checks` checks are counted; fails after COUNTS_WITHIN seconds."""
    deadline = time.monotonic() + COUNTS_WITHIN
    while True:
        response = await get_stats(client, app, headers, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["total"]["checks"] >= checks:
            assert body["total"]["checks"] == checks, body
            return body
        assert time.monotonic() < deadline, f"{checks} checks not counted in time: {body}"
        await asyncio.sleep(0.1)


async def verify(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], **body: str
) -> dict[str, Any]:
    response = await client.post(app.url_path_for("verify_one"), json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


class TestStats:
    async def test_checks_from_every_source_count_once(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]]
    ) -> None:
        shop = keys["shop_verify"]
        await verify(client, app, shop, cert_no=VALID, listing_id="sku-1", merchant_id="m-1")
        await verify(client, app, shop, cert_no=VALID, listing_id="sku-1", merchant_id="m-1")
        await verify(client, app, shop, cert_no="2024010901239999", listing_id="sku-2")
        batch = await client.post(
            app.url_path_for("verify_batch"),
            json={"items": [{"cert_no": VALID, "model": "ZZ-9", "merchant_id": "m-2"}]},
            headers=shop,
        )
        assert batch.status_code == 200, batch.text
        await run_job(client, app, shop, ndjson({"cert_no": OTHER, "listing_id": "sku-3"}))

        body = await stats_once(client, app, shop, 5, group_by="source")

        assert body["from"] == body["to"] == today()
        assert body["group_by"] == "source"
        assert [row["key"] for row in body["rows"]] == ["batch", "job", "verify"]
        assert body["total"] == {
            "checks": 5,
            "allow": 3,
            "block": 1,
            "review": 1,
            "by_reason": {"MODEL_NOT_COVERED": 1, "NOT_FOUND": 1, "VALID": 3},
            "listings": 3,
            "merchants": 2,
        }
        verify_row = body["rows"][2]
        assert (verify_row["checks"], verify_row["listings"], verify_row["merchants"]) == (3, 2, 1)

    async def test_defaults_to_days_and_groups_by_reason_and_product_code(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]]
    ) -> None:
        shop = keys["shop_verify"]
        await verify(client, app, shop, cert_no=VALID)
        await verify(client, app, shop, product_code="0902")  # no number: the claim counts
        await verify(client, app, shop)  # neither: null, listed last

        by_day = await stats_once(client, app, shop, 3)
        assert by_day["group_by"] == "day"
        assert [row["key"] for row in by_day["rows"]] == [today()]
        by_code = (await get_stats(client, app, shop, group_by="product_code")).json()
        assert [(r["key"], r["checks"]) for r in by_code["rows"]] == [
            ("0901", 1),
            ("0902", 1),
            (None, 1),
        ]
        by_reason = (await get_stats(client, app, shop, group_by="reason")).json()
        assert [r["key"] for r in by_reason["rows"]] == sorted(r["key"] for r in by_reason["rows"])
        assert sum(r["checks"] for r in by_reason["rows"]) == 3

    async def test_each_platform_sees_its_own_and_admin_all_or_one(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]]
    ) -> None:
        await verify(client, app, keys["shop_verify"], cert_no=VALID, listing_id="sku-1")
        await verify(client, app, keys["rival"], cert_no=VALID, listing_id="sku-1")
        await verify(client, app, keys["rival"], cert_no=VALID, listing_id="sku-1")

        every = await stats_once(client, app, keys["admin"], 3)
        # The same listing id on two platforms is two listings.
        assert every["total"]["listings"] == 2
        rival = await stats_once(client, app, keys["rival"], 2)
        assert rival["total"]["listings"] == 1
        shop = await stats_once(client, app, keys["shop_verify"], 1)
        assert shop["total"]["listings"] == 1
        one = await stats_once(client, app, keys["admin"], 2, platform="rival")
        assert one["rows"] == rival["rows"]
        # A key with both scopes is an admin key here: every platform unless it names one.
        assert (await stats_once(client, app, keys["shop"], 3))["total"] == every["total"]
        nobody = (await get_stats(client, app, keys["admin"], platform="nobody")).json()
        assert (nobody["rows"], nobody["total"]["checks"]) == ([], 0)

    async def test_a_check_at_2359_utc_counts_on_the_next_day_in_beijing(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        engine: AsyncEngine,
        keys: dict[str, dict[str, str]],
    ) -> None:
        late = datetime(2026, 11, 21, 23, 59, tzinfo=UTC)
        items = [
            checked(at=late, listing="sku-1", merchant="m-1"),
            checked(at=late + timedelta(days=1), listing="sku-1", merchant="m-2"),
            checked(at=late + timedelta(days=1, seconds=1), listing="sku-2", merchant="m-2"),
        ]
        await store.write_all(engine, store.batch_of(items))
        shop = keys["shop_verify"]

        def ask(first: str, last: str) -> Any:
            return get_stats(client, app, shop, **{"from": first, "to": last})

        assert (await ask("2026-11-21", "2026-11-21")).json()["rows"] == []
        body = (await ask("2026-11-21", "2026-11-23")).json()
        days = [(r["key"], r["checks"], r["listings"], r["merchants"]) for r in body["rows"]]
        assert days == [("2026-11-22", 1, 1, 1), ("2026-11-23", 2, 2, 1)]
        # Distinct over the range, not a sum of the days: sku-1 and m-2 are seen on both.
        assert (body["total"]["listings"], body["total"]["merchants"]) == (2, 2)


class TestStatsRefusals:
    @pytest.mark.parametrize(
        ("params", "code"),
        [
            ({"from": "2026-11-02", "to": "2026-11-01"}, "INVALID_DATE_RANGE"),
            ({"from": "2025-01-01", "to": "2026-02-05"}, "INVALID_DATE_RANGE"),  # 401 days
            ({"from": "2026-02-30", "to": "2026-03-01"}, "INVALID_DATE"),
            ({"from": "20261101", "to": "2026-11-02"}, "INVALID_DATE"),
            ({"from": "2026-11-01", "to": "tomorrow"}, "INVALID_DATE"),
            ({"from": "2026-11-01", "to": "2026-11-02", "group_by": "week"}, "VALIDATION_FAILED"),
            ({"from": "2026-11-01"}, "VALIDATION_FAILED"),
            ({"to": "2026-11-01"}, "VALIDATION_FAILED"),
        ],
    )
    async def test_422_with_a_code(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        keys: dict[str, dict[str, str]],
        params: dict[str, str],
        code: str,
    ) -> None:
        url = app.url_path_for("get_stats")
        response = await client.get(url, params=params, headers=keys["shop_verify"])
        assert_problem(response, 422, code)

    async def test_400_days_are_allowed(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]]
    ) -> None:
        first = date(2025, 1, 1)
        params = {"from": first.isoformat(), "to": (first + timedelta(399)).isoformat()}
        response = await get_stats(client, app, keys["shop_verify"], **params)
        assert response.status_code == 200, response.text

    async def test_platform_needs_the_admin_scope(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]]
    ) -> None:
        response = await get_stats(client, app, keys["shop_verify"], platform="shop")
        assert_problem(response, 403, "FORBIDDEN")

    async def test_a_key_with_neither_scope_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]]
    ) -> None:
        assert_problem(await get_stats(client, app, keys["batch_only"]), 403, "FORBIDDEN")
        response = await client.get(app.url_path_for("get_signals"), headers=keys["batch_only"])
        assert_problem(response, 403, "FORBIDDEN")


async def signals_once(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], want: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + COUNTS_WITHIN
    while True:
        response = await client.get(app.url_path_for("get_signals"), headers=headers)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["signals"]
        if len(found) >= want:
            return found
        assert time.monotonic() < deadline, f"{want} signals not there in time: {found}"
        await asyncio.sleep(0.1)


class TestSignals:
    async def test_ranks_claims_with_evidence_of_the_callers_own_checks(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]]
    ) -> None:
        shop, rival = keys["shop_verify"], keys["rival"]
        for n in range(5):  # five merchants claim VALID
            await verify(client, app, shop, cert_no=VALID, merchant_id=f"m-{n}")
        mismatches = [
            (await verify(client, app, shop, cert_no=OTHER, model="ZZ-9", merchant_id=m))[
                "check_id"
            ]
            for m in ("m-1", "m-2", "m-2")
        ]
        await verify(client, app, rival, cert_no=OTHER, manufacturer="Nobody Ltd")
        await verify(client, app, rival, cert_no=OTHER, manufacturer="Nobody Ltd")

        found = await signals_once(client, app, shop, 2)

        assert [
            (s["cert_no"], s["kind"], s["score"], s["checks"], s["merchants"]) for s in found
        ] == [
            (OTHER, "MODEL_MISMATCH", 3 + 2 * 2, 3, 2),
            (VALID, "MANY_MERCHANTS", 5, 5, 5),
        ]
        assert found[0]["evidence"] == sorted(mismatches, reverse=True)
        readable = await client.get(
            app.url_path_for("get_check", check_id=found[0]["evidence"][0]), headers=shop
        )
        assert readable.status_code == 200, readable.text
        (theirs,) = await signals_once(client, app, rival, 1)
        assert (theirs["kind"], theirs["checks"]) == ("MANUFACTURER_MISMATCH", 2)

        every = await signals_once(client, app, keys["admin"], 3)
        assert {(s["cert_no"], s["kind"]) for s in every} == {
            (OTHER, "MODEL_MISMATCH"),
            (VALID, "MANY_MERCHANTS"),
            (OTHER, "MANUFACTURER_MISMATCH"),
        }
        limited = await client.get(
            app.url_path_for("get_signals"), params={"limit": 1}, headers=keys["admin"]
        )
        assert limited.json()["signals"] == every[:1]

    @pytest.mark.parametrize("limit", ["0", "501", "many"])
    async def test_a_bad_limit_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, dict[str, str]], limit: str
    ) -> None:
        response = await client.get(
            app.url_path_for("get_signals"), params={"limit": limit}, headers=keys["admin"]
        )
        assert_problem(response, 422, "VALIDATION_FAILED")
