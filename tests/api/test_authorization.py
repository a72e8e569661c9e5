"""Who may call what (api.md "Authentication"), for every route the app has, and keys never
appear in clear: not in logs, not in /metrics, not in the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from ulid import ULID

from certcheck.config import Settings
from certcheck.db.tables import api_keys
from certcheck.keys import KeyStore, Scope
from tests.api.helpers import assert_problem
from tests.conftest import load, make_key
from tests.factories import cert

NUMBER = "2024010901234567"
ALLOWED = 0  # any answer that is not 401 or 403: the request got past authorisation
NDJSON = {"content-type": "application/x-ndjson"}
JOB, NOT_WATCHED = "JOB_NOT_FOUND", "LISTING_NOT_WATCHED"
NO_WEBHOOK = "WEBHOOK_NOT_FOUND"
JSON = {"content-type": "application/json"}
HOOK = '{"url": "https://8.8.8.8/hook"}'  # a public address literal: no DNS, never called
CSV = {"content-type": "text/csv"}
SNAPSHOT = f"cert_no,status,holder,product_code,models\n{NUMBER},有效,Example Co.,0901,XK-1\n"

Send = Callable[[httpx.AsyncClient, str, dict[str, str]], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Endpoint:
    scope: Scope
    send: Send
    allowed: int  # the status an authorised call gets here
    # A job, a watched listing or a check of the owner's: another platform gets 404 and this code.
    per_platform: str | None = None
    also: Scope | None = None  # another scope that is enough too


def _post_json(body: dict[str, Any]) -> Send:
    async def send(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
        return await client.post(url, json=body, headers=headers)

    return send


def _post(content: str, media: dict[str, str]) -> Send:
    async def send(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
        return await client.post(url, content=content.encode(), headers={**headers, **media})

    return send


def _put(content: str, media: dict[str, str]) -> Send:
    async def send(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
        return await client.put(url, content=content.encode(), headers={**headers, **media})

    return send


def _get(params: dict[str, str]) -> Send:
    async def send(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
        return await client.get(url, params=params, headers=headers)

    return send


def _call(method: str) -> Send:
    async def send(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
        return await client.request(method, url, headers=headers)

    return send


# Every /v1 route, by (method, route name). A new route fails test_every_route_is_listed
# until it is added here.
ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("POST", "verify_one"): Endpoint(Scope.VERIFY, _post_json({"cert_no": NUMBER}), 200),
    ("POST", "verify_batch"): Endpoint(
        Scope.BATCH, _post_json({"items": [{"cert_no": NUMBER}]}), 200
    ),
    ("GET", "get_certificate"): Endpoint(Scope.VERIFY, _call("GET"), 200),
    ("GET", "get_check"): Endpoint(Scope.VERIFY, _call("GET"), 200, per_platform="NOT_FOUND"),
    ("GET", "get_receipt"): Endpoint(Scope.VERIFY, _call("GET"), 200, per_platform="NOT_FOUND"),
    ("GET", "registry_info"): Endpoint(Scope.VERIFY, _call("GET"), 200),
    ("GET", "list_changes"): Endpoint(Scope.VERIFY, _call("GET"), 200),
    ("POST", "import_registry"): Endpoint(Scope.ADMIN, _post(SNAPSHOT, CSV), 200),
    # No CERTCHECK_UPSTREAM_URL in these tests: an authorised call gets that far.
    ("POST", "sync_registry"): Endpoint(Scope.ADMIN, _call("POST"), 409),
    ("POST", "create_recheck_job"): Endpoint(
        Scope.BATCH, _post(f'{{"cert_no": "{NUMBER}"}}\n', NDJSON), 202
    ),
    ("GET", "get_recheck_job"): Endpoint(Scope.BATCH, _call("GET"), 200, per_platform=JOB),
    # No job workers run here: the job stays queued, and its results are not ready.
    ("GET", "get_recheck_results"): Endpoint(Scope.BATCH, _call("GET"), 409, per_platform=JOB),
    ("DELETE", "delete_recheck_job"): Endpoint(Scope.BATCH, _call("DELETE"), 204, per_platform=JOB),
    ("PUT", "put_watched_listings"): Endpoint(
        Scope.BATCH, _put(f'{{"listing_id": "sku-1", "cert_no": "{NUMBER}"}}\n', NDJSON), 200
    ),
    ("GET", "get_watched_listing"): Endpoint(
        Scope.BATCH, _call("GET"), 200, per_platform=NOT_WATCHED
    ),
    ("DELETE", "delete_watched_listing"): Endpoint(
        Scope.BATCH, _call("DELETE"), 204, per_platform=NOT_WATCHED
    ),
    ("GET", "list_watch_events"): Endpoint(Scope.BATCH, _call("GET"), 200),
    # A verify key sees its own platform's figures, an admin key everyone's.
    ("GET", "get_stats"): Endpoint(
        Scope.VERIFY, _get({"from": "2026-11-01", "to": "2026-11-30"}), 200, also=Scope.ADMIN
    ),
    ("GET", "get_signals"): Endpoint(Scope.VERIFY, _call("GET"), 200, also=Scope.ADMIN),
    ("PUT", "put_watch_webhook"): Endpoint(Scope.BATCH, _put(HOOK, JSON), 200),
    # The owner's platform has one (registered before each call); another platform has none.
    ("GET", "get_watch_webhook"): Endpoint(Scope.BATCH, _call("GET"), 200, per_platform=NO_WEBHOOK),
    ("DELETE", "delete_watch_webhook"): Endpoint(
        Scope.BATCH, _call("DELETE"), 204, per_platform=NO_WEBHOOK
    ),
}
# No key, a key nobody issued, a revoked one, one per scope, one with every scope (the jobs'
# owner) and one with every scope from another platform.
CALLERS = ["none", "unknown", "revoked", "verify", "batch", "admin", "owner", "other-platform"]


def routes(app: FastAPI) -> set[tuple[str, str, str]]:
    """(method, route name, path) of every route, included routers' ones too."""
    return {
        (method, route.name or "", route.path or "")
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
        if method != "HEAD"
    }


def v1_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {(method, name) for method, name, path in routes(app) if path.startswith("/v1/")}


def expected(endpoint: Endpoint, caller: str) -> int:
    if caller in ("none", "unknown", "revoked"):
        return 401
    if caller in ("verify", "batch", "admin"):
        return ALLOWED if caller in (endpoint.scope.value, endpoint.also) else 403
    if caller == "other-platform" and endpoint.per_platform:
        return 404
    return ALLOWED


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        max_registry_age=3600,
        job_workers=0,
        job_max_unfinished=1000,
        # Sixteen calls wait for a check's record to be readable: flush often.
        check_flush_seconds=0.05,
    )


@pytest.fixture
async def keys(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, str]:
    """The full key of each caller (none for "none")."""
    await load(engine, [cert(NUMBER)])
    await client.get("/readyz")  # this process adopts the registry now
    made = {
        "verify": await make_key(engine, Scope.VERIFY),
        "batch": await make_key(engine, Scope.BATCH),
        "admin": await make_key(engine, Scope.ADMIN),
        "owner": await make_key(engine, *Scope),
        "other-platform": await make_key(engine, *Scope, platform="rival"),
        "revoked": await make_key(engine, *Scope),
        "unknown": "cc_0123456789ab_" + "A" * 43,
    }
    assert await KeyStore(engine, cache_ttl=0).revoke(made["revoked"].split("_")[1])
    return made


def auth(keys: dict[str, str], caller: str) -> dict[str, str]:
    return {} if caller == "none" else {"Authorization": f"Bearer {keys[caller]}"}


class TestMatrix:
    def test_every_route_is_listed(self, app: FastAPI) -> None:
        assert v1_routes(app) == set(ENDPOINTS)

    async def test_every_route_and_caller(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        engine: AsyncEngine,
        keys: dict[str, str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        for (method, name), endpoint in ENDPOINTS.items():
            for caller in CALLERS:
                url = await self._url(client, app, keys, name, endpoint)
                response = await endpoint.send(client, url, auth(keys, caller))
                want = expected(endpoint, caller)
                where = (method, name, caller, response.text)
                if want == ALLOWED:
                    assert response.status_code == endpoint.allowed, where
                else:
                    assert response.status_code == want, where
                    code = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: endpoint.per_platform}
                    assert_problem(response, want, code[want] or "")
                if want == 401:
                    assert response.headers["www-authenticate"] == "Bearer", where
        await self._assert_no_key_in_clear(client, engine, keys, caplog.text)

    async def test_probes_and_documents_need_no_key(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, str]
    ) -> None:
        others = [path for method, _, path in routes(app) if not path.startswith("/v1/")]
        assert all(method == "GET" for method, _, path in routes(app) if path in others)
        assert {"/healthz", "/readyz", "/metrics"} <= set(others)
        for path in others:
            # The public lookup page of a certificate the registry holds (`keys` loads it).
            response = await client.get(path.replace("{cert_no:path}", NUMBER))
            assert response.status_code == 200, (path, response.text)

    async def _url(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        keys: dict[str, str],
        name: str,
        endpoint: Endpoint,
    ) -> str:
        if name == "get_certificate":
            return app.url_path_for(name, cert_no=NUMBER)
        if not endpoint.per_platform:
            return app.url_path_for(name)
        if name in ("get_check", "get_receipt"):
            return app.url_path_for(name, check_id=await self._owners_check(client, app, keys))
        if name in ("get_watch_webhook", "delete_watch_webhook"):
            # The other platform's PUT call registered one of its own: it must have none here.
            await client.delete(app.url_path_for(name), headers=auth(keys, "other-platform"))
            put = await client.put(
                app.url_path_for("put_watch_webhook"),
                content=HOOK.encode(),
                headers={**auth(keys, "owner"), **JSON},
            )
            assert put.status_code == 200, put.text
            return app.url_path_for(name)
        if name in ("get_watched_listing", "delete_watched_listing"):
            listing = f"sku-{ULID()}"
            put = await client.put(
                app.url_path_for("put_watched_listings"),
                content=f'{{"listing_id": "{listing}", "cert_no": "{NUMBER}"}}\n'.encode(),
                headers={**auth(keys, "owner"), **NDJSON},
            )
            assert put.status_code == 200, put.text
            return app.url_path_for(name, listing_id=listing)
        # A fresh job of the owner's platform for each call (DELETE forgets it).
        created = await client.post(
            app.url_path_for("create_recheck_job"),
            content=f'{{"cert_no": "{NUMBER}"}}\n'.encode(),
            headers={**auth(keys, "owner"), **NDJSON},
        )
        assert created.status_code == 202, created.text
        return app.url_path_for(name, job_id=created.json()["job_id"])

    async def _owners_check(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, str]
    ) -> str:
        """A check of the owner's platform, once its record is readable (within 2 s)."""
        owner = auth(keys, "owner")
        verified = await client.post(
            app.url_path_for("verify_one"), json={"cert_no": NUMBER}, headers=owner
        )
        check_id = str(verified.json()["check_id"])
        url = app.url_path_for("get_check", check_id=check_id)
        for _ in range(40):
            if (await client.get(url, headers=owner)).status_code == 200:
                return check_id
            await asyncio.sleep(0.1)
        raise AssertionError(f"check {check_id} was not readable within 4 s")

    async def _assert_no_key_in_clear(
        self, client: httpx.AsyncClient, engine: AsyncEngine, keys: dict[str, str], logs: str
    ) -> None:
        metrics = (await client.get("/metrics")).text
        async with engine.connect() as conn:
            rows = (await conn.execute(select(api_keys))).mappings().all()
        stored = " ".join(str(value) for row in rows for value in row.values())
        for caller, key in keys.items():
            secret = key.split("_")[2]
            for text, what in ((logs, "logs"), (metrics, "/metrics"), (stored, "api_keys")):
                assert key not in text, (caller, what)
                assert secret not in text, (caller, what)
        digests = {row["secret_hash"] for row in rows}
        for caller in ("verify", "batch", "admin", "owner", "other-platform", "revoked"):
            secret = keys[caller].split("_")[2]
            assert hashlib.sha256(secret.encode()).hexdigest() in digests, caller


class TestHostileAuthorization:
    """Whatever arrives in Authorization, the answer is 401 (or 200 for a valid key), never 500."""

    @pytest.mark.parametrize(
        "value",
        [
            b"",
            b"Bearer",
            b"Bearer ",
            b"Bearer    ",
            b"Basic dXNlcjpwYXNz",
            b"Bearer " + b"A" * 100_000,
            b"Bearer cc_0123456789ab_" + b"A" * 100_000,
            b"Bearer cc_\xe9\xff_secret",
            b"Bearer cc_0123456789ab_s\xe9cret",
            b"Bearer cc_01234\x0056789ab_secret",
            b"Bearer cc_0123456789ab_sec_ret",
            b"Bearer cc__secret",
            b"Bearer cc_0123456789ab_",
            b"Bearer xx_0123456789ab_secret",
        ],
        ids=[
            "empty",
            "scheme-only",
            "empty-token",
            "blank-token",
            "basic",
            "100kb",
            "100kb-secret",
            "latin1-id",
            "latin1-secret",
            "nul-byte",
            "extra-underscore",
            "empty-id",
            "empty-secret",
            "other-prefix",
        ],
    )
    async def test_is_401(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, str], value: bytes
    ) -> None:
        response = await client.get(
            app.url_path_for("get_certificate", cert_no=NUMBER),
            headers=[(b"Authorization", value)],
        )
        assert_problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
    async def test_the_scheme_is_case_insensitive(
        self, client: httpx.AsyncClient, app: FastAPI, keys: dict[str, str], scheme: str
    ) -> None:
        response = await client.get(
            app.url_path_for("get_certificate", cert_no=NUMBER),
            headers={"Authorization": f"{scheme} {keys['verify']}"},
        )
        assert response.status_code == 200, response.text
