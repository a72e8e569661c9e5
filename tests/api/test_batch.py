"""POST /v1/verify/batch: order, summary, bounds, and one bulk lookup per batch."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.checking import Checker
from certcheck.config import Settings
from tests.api.helpers import assert_problem
from tests.conftest import load
from tests.factories import cert


def number(i: int) -> str:
    return f"2024010901{i:06d}"


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, [cert(number(i)) for i in range(50)])
    await client.get("/readyz")


@pytest.mark.usefixtures("loaded")
class TestVerifyBatch:
    async def test_results_in_order_with_summary(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        items = [
            {"cert_no": number(3), "listing_id": "a"},
            {"cert_no": "garbage", "listing_id": "b"},
            {"cert_no": number(999), "listing_id": "c"},
            {"cert_no": number(4), "model": "nope", "listing_id": "d"},
            {"product_code": "0908", "listing_id": "e"},
        ]
        response = await client.post(
            app.url_path_for("verify_batch"), json={"items": items}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["listing_id"] for r in body["results"]] == ["a", "b", "c", "d", "e"]
        assert [r["reason"] for r in body["results"]] == [
            "VALID",
            "MALFORMED",
            "NOT_FOUND",
            "MODEL_NOT_COVERED",
            "NOT_REQUIRED",
        ]
        assert body["summary"] == {"allow": 2, "block": 2, "review": 1}
        malformed = body["results"][1]
        assert malformed["cert_no_given"] == "garbage"
        assert malformed["detail"].startswith("'garbage': 'g' is not a digit 0-9. ")
        others = body["results"][:1] + body["results"][2:]
        assert all(r["cert_no_given"] is None and r["detail"] is None for r in others)

    async def test_made_with_the_cyclic_collector_paused_then_resumed(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        seen: list[bool] = []
        check = Checker.check

        async def watched(self: Checker, *args: Any, **kwargs: Any) -> Any:
            seen.append(gc.isenabled())
            return await check(self, *args, **kwargs)

        monkeypatch.setattr(Checker, "check", watched)
        assert gc.isenabled()
        response = await client.post(
            app.url_path_for("verify_batch"),
            json={"items": [{"cert_no": number(3)}]},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert seen == [False]
        assert gc.isenabled()

    async def test_one_lookup_for_the_whole_batch(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        reads: list[int],
    ) -> None:
        items = [{"cert_no": number(i)} for i in range(40)] * 2
        response = await client.post(
            app.url_path_for("verify_batch"), json={"items": items}, headers=headers
        )
        assert response.status_code == 200
        assert reads == [40]  # one read, each number asked once

    async def test_item_index_named_when_one_is_invalid(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        items: list[dict[str, Any]] = [{"cert_no": number(1)}, {"cert_no": 7}]
        response = await client.post(
            app.url_path_for("verify_batch"), json={"items": items}, headers=headers
        )
        body = assert_problem(response, 422, "VALIDATION_FAILED")
        assert body["errors"][0]["loc"][:3] == ["body", "items", 1]

    @pytest.mark.parametrize(
        "body",
        [{"items": []}, {}, {"items": "x"}, [], {"items": [{}], "extra": 1}],
        ids=["empty", "no-items", "not-array", "not-object", "unknown-field"],
    )
    async def test_bad_envelope_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], body: Any
    ) -> None:
        response = await client.post(app.url_path_for("verify_batch"), json=body, headers=headers)
        assert_problem(response, 422, "VALIDATION_FAILED")


class TestBatchLimit:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, batch_max_items=3)

    @pytest.mark.usefixtures("loaded")
    async def test_over_the_limit_is_413(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        url = app.url_path_for("verify_batch")
        ok = await client.post(url, json={"items": [{}] * 3}, headers=headers)
        assert ok.status_code == 200
        too_many = await client.post(url, json={"items": [{}] * 4}, headers=headers)
        assert_problem(too_many, 413, "TOO_MANY_ITEMS")
