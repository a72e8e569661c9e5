"""The verify lane (api/verify_lane.py) answers the common POST /v1/verify itself and hands
everything else to the app: each answer is the one the app gives with the lane switched off."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Receive, Scope, Send

from certcheck.app import CertcheckApp
from certcheck.config import Settings
from certcheck.keys import Scope as KeyScope
from tests.conftest import FUNCTIONAL_DB_TIMEOUT, load, make_key
from tests.factories import cert

VALID = "2024010901234567"
PATH = "/v1/verify"


class Counted:
    """The lane's hand-over to the app, counting what it hands over."""

    def __init__(self, app: CertcheckApp) -> None:
        assert app.lane is not None
        self.lane = app.lane
        self.inner = app.lane._handover
        self.calls = 0
        self.lane._handover = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.inner(scope, receive, send)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        max_registry_age=3600,
        rate_limit="3/minute",
        db_timeout=FUNCTIONAL_DB_TIMEOUT,
    )


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, [cert(VALID)])
    assert (await client.get("/readyz")).status_code == 200


@pytest.fixture
def handed(app: FastAPI) -> Counted:
    assert isinstance(app, CertcheckApp)
    return Counted(app)


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    try:
        body = response.json()
    except ValueError:
        return response.status_code, headers, response.content
    if isinstance(body, dict):
        body.pop("check_id", None)
        body.pop("checked_at", None)
    return response.status_code, headers, body


async def _both(
    app: FastAPI, client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """The same request with the lane on, then off."""
    assert isinstance(app, CertcheckApp)
    lane = app.lane
    on = await client.post(PATH, content=body, headers=headers)
    app.lane = None
    try:
        off = await client.post(PATH, content=body, headers=headers)
    finally:
        app.lane = lane
    return on, off


JSON = {"Content-Type": "application/json"}


@pytest.mark.usefixtures("loaded")
class TestTheLaneAnswers:
    async def test_a_common_request_is_answered_without_the_app(
        self, client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, handed: Counted
    ) -> None:
        key = {"Authorization": f"Bearer {await make_key(engine, KeyScope.VERIFY)}"}
        body = json.dumps({"cert_no": VALID, "listing_id": "商品-1"}).encode()
        first = await client.post(PATH, content=body, headers={**key, **JSON})
        assert handed.calls == 1  # a key not yet in the cache: the app looks it up
        on, off = await _both(app, client, body, {**key, **JSON})
        assert handed.calls == 1  # the second request, with the lane on, never reached the app
        assert _comparable(first) == _comparable(on) == _comparable(off)
        assert on.json()["decision"] == "allow"
        assert on.headers["x-request-id"] != off.headers["x-request-id"]

    async def test_headers_as_two_item_lists_are_read_too(
        self, client: httpx.AsyncClient, engine: AsyncEngine, handed: Counted
    ) -> None:
        """ASGI's headers are two-item iterables: uvicorn's are tuples, another server's may
        be lists, and the compiled lane reads both."""
        key = {"Authorization": f"Bearer {await make_key(engine, KeyScope.VERIFY)}"}
        body = json.dumps({"cert_no": VALID}).encode()
        await client.post(PATH, content=body, headers={**key, **JSON})  # the key into its cache
        served = client._transport.app  # type: ignore[attr-defined]  # the lifespan's app

        async def listed(scope: Scope, receive: Receive, send: Send) -> None:
            await served({**scope, "headers": [list(h) for h in scope["headers"]]}, receive, send)

        transport = httpx.ASGITransport(app=listed)
        async with httpx.AsyncClient(transport=transport, base_url="http://certcheck.test") as c:
            answer = await c.post(PATH, content=body, headers={**key, **JSON})
        assert answer.status_code == 200
        assert answer.json()["decision"] == "allow"
        assert handed.calls == 1  # the first request's key look-up only: the lane answered

    async def test_a_callers_request_id_is_kept(
        self, client: httpx.AsyncClient, headers: dict[str, str], handed: Counted
    ) -> None:
        await client.post(PATH, json={"cert_no": VALID}, headers=headers)  # caches the key
        sent = {**headers, "X-Request-ID": "upload-42"}
        answer = await client.post(PATH, json={"cert_no": VALID}, headers=sent)
        assert answer.headers["x-request-id"] == "upload-42"
        assert handed.calls == 1

    async def test_its_answers_are_logged_and_timed_under_the_routes_template(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        handed: Counted,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        await client.post(PATH, json={"cert_no": VALID}, headers=headers)  # caches the key
        with caplog.at_level(logging.INFO, logger="certcheck.request"):
            sent = {**headers, "X-Request-ID": "lane-route-1"}
            await client.post(PATH, json={"cert_no": VALID}, headers=sent)
        assert handed.calls == 1  # the second was the lane's
        (line,) = [r for r in caplog.records if getattr(r, "request_id", "") == "lane-route-1"]
        assert line.__dict__["route"] == PATH
        timed = re.findall(
            r'^certcheck_http_request_duration_seconds_count\{[^}]*route="([^"]*)"',
            (await client.get("/metrics")).text,
            re.MULTILINE,
        )
        assert PATH in timed
        assert all(route.startswith("/") or route == "unmatched" for route in timed), timed


# Bodies and headers the lane must hand over, or answer exactly as the app does.
ODD_BODIES = [
    b'{"cert_no": "%s", "cert_no": "2024010901000000"}' % VALID.encode(),  # a name twice
    b'{"cert_no": "%s", "cert\\u005fno": "2024010901000000"}' % VALID.encode(),  # escaped twin
    b'{"cert_no": "\\ud800"}',  # a lone surrogate
    b'{"cert_no": "%s", "listing_id": "a\\u0000b"}' % VALID.encode(),  # a NUL
    b'{"cert_no": "\\u0032024010901234567"}',  # an escape that is fine
    b'\xef\xbb\xbf{"cert_no": "%s"}' % VALID.encode(),  # a byte order mark
    b'{"cert_no": NaN}',
    b'{"cert_no": 2024010901234567}',
    b'{"cert_no": "%s", "listing_id": Infinity}' % VALID.encode(),
    b'{"cert_no": "%s"} x' % VALID.encode(),
    b'{"cert_no": "%s",}' % VALID.encode(),
    b'{"cert_no": "\xff"}',  # not UTF-8
    b'{"listing_id": "has \\"cert_no\\": inside", "cert_no": "%s"}' % VALID.encode(),
    b'{"cert_no": "%s", "unknown": 1}' % VALID.encode(),
    b"[]",
    b"null",
    b"",
    b"{}",
    b'{"cert_no": "not a number"}',
]


@pytest.mark.usefixtures("loaded")
class TestSameAnswersAsTheApp:
    @pytest.mark.parametrize("body", ODD_BODIES)
    async def test_odd_bodies(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], body: bytes
    ) -> None:
        await client.post(PATH, json={"cert_no": VALID}, headers=headers)  # caches the key
        on, off = await _both(app, client, body, {**headers, **JSON})
        assert _comparable(on) == _comparable(off)

    @pytest.mark.parametrize(
        "sent",
        [
            {},  # no key
            {"Authorization": "Bearer cc_000000000000_nope"},
            {"Authorization": "Basic abc"},
            {"Content-Type": "text/plain"},
            {"Content-Type": "application/json; charset=latin-1"},
        ],
    )
    async def test_odd_headers(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        sent: dict[str, str],
    ) -> None:
        await client.post(PATH, json={"cert_no": VALID}, headers=headers)  # caches the key
        body = json.dumps({"cert_no": VALID}).encode()
        on, off = await _both(app, client, body, {**headers, **JSON, **sent})
        assert _comparable(on) == _comparable(off)

    async def test_a_key_without_the_verify_scope(
        self, client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, handed: Counted
    ) -> None:
        key = {"Authorization": f"Bearer {await make_key(engine, KeyScope.BATCH)}", **JSON}
        body = json.dumps({"cert_no": VALID}).encode()
        await client.post(PATH, content=body, headers=key)
        on, off = await _both(app, client, body, key)
        assert on.status_code == off.status_code == 403
        assert handed.calls == 2

    async def test_past_the_rate_limit_the_app_answers_429_and_counts_nothing_twice(
        self, client: httpx.AsyncClient, engine: AsyncEngine, handed: Counted
    ) -> None:
        key = {"Authorization": f"Bearer {await make_key(engine, KeyScope.VERIFY)}", **JSON}
        body = json.dumps({"cert_no": VALID}).encode()
        answers = [await client.post(PATH, content=body, headers=key) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]  # 3/minute
        assert answers[3].headers["retry-after"]
        # The first looked the key up through the app; the fourth was refused by it.
        assert handed.calls == 2

    async def test_a_body_over_the_cap_and_a_chunked_one(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        await client.post(PATH, json={"cert_no": VALID}, headers=headers)
        big = json.dumps({"cert_no": VALID, "listing_id": "x" * 100_000}).encode()
        on, off = await _both(app, client, big, {**headers, **JSON})
        assert on.status_code == off.status_code == 413
        assert _comparable(on) == _comparable(off)

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"cert_no": '
            yield b'"%s"}' % VALID.encode()

        chunked = await client.post(PATH, content=chunks(), headers={**headers, **JSON})
        assert chunked.status_code == 200
        assert chunked.json()["decision"] == "allow"


class TestErrorsWhileDeciding:
    async def test_no_registry_is_answered_by_the_apps_own_handler(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], handed: Counted
    ) -> None:
        body = json.dumps({"cert_no": VALID}).encode()
        first = await client.post(PATH, content=body, headers={**headers, **JSON})
        on, off = await _both(app, client, body, {**headers, **JSON})
        assert on.status_code == off.status_code == first.status_code == 503
        assert _comparable(on) == _comparable(off)
        assert on.json()["code"] == "REGISTRY_UNAVAILABLE"
        assert on.headers["retry-after"]
        assert handed.calls == 1  # the first only, which looked the key up
