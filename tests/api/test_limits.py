"""Hostile bodies and load: keys checked before bodies, bodies capped and bounded, load shed."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from certcheck.api.limits import BodyCaps, InFlight, RequestLimits
from certcheck.api.strict_json import loads_strict
from certcheck.config import Settings
from certcheck.errors import TooManyItems
from certcheck.observability.shutdown import Lifecycle
from tests.api.helpers import assert_problem

JSON = {"Content-Type": "application/json"}


class Trickle:
    """A chunked request body that records how much of it the server pulled."""

    def __init__(self, chunks: int, size: int = 1 << 20, hold: asyncio.Event | None = None) -> None:
        self.chunks, self.size, self.hold = chunks, size, hold
        self.pulled = 0
        self.started = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started.set()
        yield b'{"items": ['
        for _ in range(self.chunks):
            if self.hold is not None:
                await self.hold.wait()
            self.pulled += 1
            yield b" " * self.size


class TestAuthenticatedBeforeTheBody:
    async def test_anonymous_50_mb_is_refused_unread(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        body = Trickle(50)
        response = await client.post(app.url_path_for("verify_batch"), content=body, headers=JSON)
        assert_problem(response, 401, "UNAUTHENTICATED")
        assert body.pulled == 0

    async def test_a_key_without_the_scope_is_refused_unread(
        self, client: httpx.AsyncClient, app: FastAPI, verify_only: dict[str, str]
    ) -> None:
        body = Trickle(50)
        response = await client.post(
            app.url_path_for("verify_batch"), content=body, headers={**verify_only, **JSON}
        )
        assert_problem(response, 403, "FORBIDDEN")
        assert body.pulled == 0

    async def test_the_route_dependency_reuses_the_principal(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await client.post(app.url_path_for("verify_one"), json={}, headers=headers)
        assert response.status_code == 503  # authorised, then the empty registry answers


class TestBodyCaps:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(
            database_url=database_url, max_body_bytes=4 << 20, verify_max_body_bytes=1_024
        )

    async def test_declared_length_over_the_cap_is_413_before_anything(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await client.post(
            app.url_path_for("verify_batch"), content=b" " * (5 << 20), headers=JSON
        )
        assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
        assert response.headers["connection"] == "close"

    async def test_chunked_body_is_cut_off_once_over(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = Trickle(50)
        response = await client.post(
            app.url_path_for("verify_batch"), content=body, headers={**headers, **JSON}
        )
        assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
        assert response.headers["connection"] == "close"
        assert body.pulled <= 5

    async def test_single_verify_has_the_smaller_cap(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        padded = b'{"model": "' + b"m" * 2_000 + b'"}'
        one = await client.post(
            app.url_path_for("verify_one"), content=padded, headers={**headers, **JSON}
        )
        assert_problem(one, 413, "PAYLOAD_TOO_LARGE")
        batch = await client.post(
            app.url_path_for("verify_batch"),
            content=b'{"items": [' + padded + b"]}",
            headers={**headers, **JSON},
        )
        assert_problem(batch, 422, "VALIDATION_FAILED")  # read and parsed: model too long

    async def test_uploads_are_not_under_the_json_cap(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        lines = b'{"cert_no": "2024010901234567"}\n' * 200_000  # 6.4 MB > max_body_bytes
        response = await client.post(
            app.url_path_for("create_recheck_job"),
            content=lines,
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 202, response.text


class TestBatchBoundedWhileParsed:
    def test_a_million_empty_items_stop_the_parse_early(self) -> None:
        body = b'{"items": [' + b",".join([b"{}"] * 1_000_000) + b"]}"
        tracemalloc.start()
        started = time.perf_counter()
        try:
            with pytest.raises(TooManyItems) as refused:
                loads_strict(body, max_items=10_000)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert refused.value.status == 413
        assert refused.value.code == "TOO_MANY_ITEMS"
        # Unbounded, this parse builds a million dicts (hundreds of MB, seconds).
        assert elapsed < 1.0  # on a loaded 2-core box; ~0.05 s idle
        assert peak < 3 * len(body) + (8 << 20)  # the decoded text plus 10,000 small dicts

    def test_items_that_are_not_objects_are_counted_too(self) -> None:
        with pytest.raises(TooManyItems) as refused:
            loads_strict(b'{"items": [' + b",".join([b"1"] * 11) + b"]}", max_items=10)
        assert refused.value.code == "TOO_MANY_ITEMS"

    async def test_over_http_in_well_under_a_second(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = b'{"items": [' + b",".join([b"{}"] * 1_000_000) + b"]}"
        started = time.perf_counter()
        response = await client.post(
            app.url_path_for("verify_batch"), content=body, headers={**headers, **JSON}
        )
        elapsed = time.perf_counter() - started
        body_problem = assert_problem(response, 413, "TOO_MANY_ITEMS")
        assert "at most 10000" in body_problem["detail"]
        assert elapsed < 2.0  # was 5.9 s idle (30 s on a loaded CI box); now ~0.1 s idle


class TestOverload:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_in_flight=1)

    async def test_past_the_bound_is_503_at_once_and_probes_still_answer(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        release = asyncio.Event()
        slow = Trickle(1, size=10, hold=release)
        url = app.url_path_for("verify_batch")
        first = asyncio.create_task(client.post(url, content=slow, headers={**headers, **JSON}))
        await asyncio.wait_for(slow.started.wait(), 10)  # the first is reading its body
        shed = await client.post(app.url_path_for("verify_one"), json={}, headers=headers)
        assert_problem(shed, 503, "OVERLOADED")
        assert shed.headers["retry-after"] == "1"
        assert (await client.get(app.url_path_for("healthz"))).status_code == 200
        release.set()
        assert_problem(await first, 422, "INVALID_JSON")  # the unfinished body, let through
        again = await client.post(app.url_path_for("verify_one"), json={}, headers=headers)
        assert again.json()["code"] != "OVERLOADED"


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class TestDraining:
    @pytest.mark.parametrize("path", ["/v1/anything", "/healthz"])
    async def test_every_answer_closes_the_connection_while_draining(self, path: str) -> None:
        lifecycle = Lifecycle()
        limits = RequestLimits(
            _ok,
            caps=BodyCaps(json=1_024, verify=1_024),
            in_flight=InFlight(10),
            database_budget=1.0,
        )

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            await limits({**scope, "state": {"lifecycle": lifecycle}}, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert "connection" not in (await client.get(path)).headers
            lifecycle.draining = True
            assert (await client.get(path)).headers["connection"] == "close"
