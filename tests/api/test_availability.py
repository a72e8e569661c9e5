"""No decision from guesswork: 503 with Retry-After when the registry cannot be consulted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import AuthMode, Settings
from certcheck.db.tables import registry_state
from tests.api.test_requests import assert_problem
from tests.conftest import load
from tests.factories import cert

NUMBER = "2024010901234567"


async def calls(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
) -> list[httpx.Response]:
    return [
        await client.post(
            app.url_path_for("verify_one"), json={"cert_no": NUMBER}, headers=headers
        ),
        await client.post(
            app.url_path_for("verify_batch"), json={"items": [{"cert_no": NUMBER}]}, headers=headers
        ),
        await client.get(app.url_path_for("get_certificate", cert_no=NUMBER), headers=headers),
    ]


class TestRegistryUnavailable:
    async def test_no_registry_loaded(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        for response in await calls(client, app, headers):
            assert_problem(response, 503, "REGISTRY_UNAVAILABLE")
            assert int(response.headers["retry-after"]) > 0
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["registry"].startswith("REGISTRY_UNAVAILABLE")

    async def test_even_a_number_without_lookup_gets_no_decision(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            app.url_path_for("verify_one"), json={"product_code": "0908"}, headers=headers
        )
        assert_problem(response, 503, "REGISTRY_UNAVAILABLE")


class TestRegistryStale:
    @pytest.fixture
    async def stale(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        await load(engine, [cert(NUMBER)])
        async with engine.begin() as conn:
            await conn.execute(
                update(registry_state).values(
                    refreshed_at=datetime.now(UTC) - timedelta(seconds=3601)
                )
            )
        await client.get("/readyz")

    @pytest.mark.usefixtures("stale")
    async def test_older_than_max_age(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        for response in await calls(client, app, headers):
            body = assert_problem(response, 503, "REGISTRY_STALE")
            assert "maximum age of 3600 s" in body["detail"]
            assert "retry-after" in response.headers
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["registry"].startswith("REGISTRY_STALE")
        info = (await client.get("/v1/registry", headers=headers)).json()
        assert info["ready"] is False
        assert info["certificates"] == 1


class TestDatabaseDown:
    @pytest.fixture
    def settings(self) -> Settings:
        # Port 1 on loopback: nothing listens there, so every connection is refused at once.
        return Settings(
            database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
            auth=AuthMode.DISABLED,
        )

    async def test_answers_503_and_readyz_names_the_database(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await client.post(app.url_path_for("verify_one"), json={"cert_no": NUMBER})
        assert_problem(response, 503, "REGISTRY_UNAVAILABLE")
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unreachable")
        assert (await client.get("/healthz")).status_code == 200
