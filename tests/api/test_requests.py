"""Bad input gets a clear problem+json answer with a code, never a 500."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.deps import get_checker
from certcheck.config import AuthMode, Settings
from tests.api.helpers import assert_problem
from tests.conftest import load
from tests.factories import cert

RAW_BODIES = [
    ("duplicate-member", b'{"cert_no": "2024010901234567", "cert_no": "x"}', "INVALID_JSON"),
    ("nan", b'{"cert_no": NaN}', "INVALID_JSON"),
    ("infinity", b'{"model": Infinity}', "INVALID_JSON"),
    ("lone-surrogate", b'{"model": "\\ud800"}', "INVALID_JSON"),
    ("nested-lone-surrogate-key", b'{"\\udfff": 1}', "INVALID_JSON"),
    ("nul-in-a-string", b'{"listing_id": "sku\\u0000"}', "VALIDATION_FAILED"),
    ("nul-in-a-name", b'{"\\u0000": "x"}', "VALIDATION_FAILED"),
    ("not-json", b"cert_no=2024010901234567", "INVALID_JSON"),
    ("truncated", b'{"cert_no": "20240', "INVALID_JSON"),
    ("not-utf8", b'{"model": "\xff"}', "INVALID_JSON"),
    ("array", b'["2024010901234567"]', "VALIDATION_FAILED"),
    ("number-for-string", b'{"cert_no": 2024010901234567}', "VALIDATION_FAILED"),
    ("unknown-field", b'{"cert_number": "2024010901234567"}', "VALIDATION_FAILED"),
    ("cert-no-too-long", b'{"cert_no": "' + b"1" * 65 + b'"}', "VALIDATION_FAILED"),
    ("model-too-long", b'{"model": "' + b"m" * 257 + b'"}', "VALIDATION_FAILED"),
    ("bool-for-string", b'{"product_code": true}', "VALIDATION_FAILED"),
    ("empty-body", b"", "VALIDATION_FAILED"),
]


class TestVerifyRequestValidation:
    @pytest.mark.parametrize(
        ("body", "code"), [c[1:] for c in RAW_BODIES], ids=[c[0] for c in RAW_BODIES]
    )
    async def test_rejected(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        body: bytes,
        code: str,
    ) -> None:
        response = await client.post(
            app.url_path_for("verify_one"),
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_problem(response, 422, code)

    @pytest.mark.parametrize(
        "content_type",
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/json; charset=latin-1",
        ],
    )
    async def test_other_media_types_get_415(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        content_type: str,
    ) -> None:
        response = await client.post(
            app.url_path_for("verify_one"),
            content=b"{}",
            headers={**headers, "Content-Type": content_type},
        )
        assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")

    async def test_validation_problem_names_the_field(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            app.url_path_for("verify_one"), json={"model": 5}, headers=headers
        )
        body = assert_problem(response, 422, "VALIDATION_FAILED")
        assert body["detail"].startswith("model:")
        assert body["errors"][0]["loc"] == ["body", "model"]

    async def test_a_nul_character_is_refused_where_it_is(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        """Strict JSON may spell one, PostgreSQL cannot store it: asked with one, a check would
        be answered and its record never written (it held back every record flushed with it)."""
        items = [{"cert_no": "2024010901234567"}, {"listing_id": "a", "merchant_id": "m\x00"}]
        response = await client.post(
            app.url_path_for("verify_batch"), json={"items": items}, headers=headers
        )
        body = assert_problem(response, 422, "VALIDATION_FAILED")
        assert body["detail"].startswith("items.1.merchant_id: String should not hold a NUL")
        assert [e["loc"] for e in body["errors"]] == [["body", "items", 1, "merchant_id"]]
        assert body["errors"][0]["type"] == "string_nul"

    async def test_an_escaped_backslash_before_u0000_is_no_nul(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        engine: AsyncEngine,
    ) -> None:
        await load(engine, [cert("2024010901234567")])
        await client.get("/readyz")  # the store adopts the registry now
        response = await client.post(
            app.url_path_for("verify_one"),
            content=b'{"listing_id": "a\\\\u0000b"}',
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["listing_id"] == "a\\u0000b"


class TestAuthentication:
    async def test_missing_key(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        response = await client.post(app.url_path_for("verify_one"), json={})
        assert_problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("token", ["nonsense", "cc_abc_def", "cc__", "Basic dXNlcjpwYXNz"])
    async def test_unknown_key(self, client: httpx.AsyncClient, app: FastAPI, token: str) -> None:
        response = await client.post(
            app.url_path_for("verify_one"),
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert_problem(response, 401, "UNAUTHENTICATED")

    async def test_tampered_secret(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        tampered = headers["Authorization"][:-2] + "xx"
        response = await client.post(
            app.url_path_for("verify_one"), json={}, headers={"Authorization": tampered}
        )
        assert_problem(response, 401, "UNAUTHENTICATED")

    async def test_scope_is_enforced(
        self, client: httpx.AsyncClient, app: FastAPI, verify_only: dict[str, str]
    ) -> None:
        batch = await client.post(
            app.url_path_for("verify_batch"), json={"items": [{}]}, headers=verify_only
        )
        assert_problem(batch, 403, "FORBIDDEN")
        upload = await client.post(
            app.url_path_for("import_registry"),
            content=b"",
            headers={**verify_only, "Content-Type": "text/csv"},
        )
        assert_problem(upload, 403, "FORBIDDEN")

    async def test_revoked_key_is_refused(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        verify_only: dict[str, str],
        revoke: Any,
    ) -> None:
        await revoke(verify_only)
        response = await client.post(app.url_path_for("verify_one"), json={}, headers=verify_only)
        assert_problem(response, 401, "UNAUTHENTICATED")


class TestErrorsEverywhere:
    async def test_unknown_path(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/nothing-here"), 404, "NOT_FOUND")

    async def test_wrong_method(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        response = await client.get(app.url_path_for("verify_one"))
        assert_problem(response, 405, "METHOD_NOT_ALLOWED")


class TestRateLimit:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, rate_limit="3/minute")

    async def test_over_the_limit_is_429_with_retry_after(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        verify_only: dict[str, str],
    ) -> None:
        url = app.url_path_for("get_certificate", cert_no="x")
        for _ in range(3):
            assert (await client.get(url, headers=headers)).status_code != 429
        limited = await client.get(url, headers=headers)
        assert_problem(limited, 429, "RATE_LIMITED")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Another key has its own allowance.
        assert (await client.get(url, headers=verify_only)).status_code != 429


class _Broken:
    async def check(self, _listings: object) -> None:
        raise RuntimeError("secret internal detail")


class TestUnexpectedFailure:
    async def test_500_is_a_problem_without_traceback(
        self, app: FastAPI, headers: dict[str, str]
    ) -> None:
        app.dependency_overrides[get_checker] = _Broken
        async with LifespanManager(app) as manager:
            # Starlette re-raises after answering, for the server's log; a server answers anyway.
            transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post(
                    app.url_path_for("verify_one"), json={}, headers=headers
                )
        body = assert_problem(response, 500, "INTERNAL")
        assert "secret internal detail" not in response.text
        assert "RuntimeError" not in body["detail"]


class TestAuthDisabled:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, auth=AuthMode.DISABLED)

    async def test_no_key_needed_and_said_loudly(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING):
            async with LifespanManager(app) as manager:
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    response = await client.get(app.url_path_for("registry_info"))
        assert response.status_code == 200
        assert any("CERTCHECK_AUTH=disabled" in r.getMessage() for r in caplog.records)
