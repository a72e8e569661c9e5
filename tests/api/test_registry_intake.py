"""Snapshot uploads that try to cost the service: size, endless lines, blank floods, imports
that run too long, and clients that go away while their import runs."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.api.routes import registry as registry_routes
from certcheck.app import create_app
from certcheck.config import Settings
from certcheck.registry import state
from certcheck.registry.lock import registry_writer
from certcheck.snapshots import importer
from tests.api.helpers import CSV_HEADER, assert_problem
from tests.conftest import load
from tests.factories import cert

URL = "/v1/admin/registry/import"
NUMBERS = [f"2024010901{i:06d}" for i in range(20)]
SNAPSHOT = (CSV_HEADER + "".join(f"{n},valid,Co.,,\n" for n in NUMBERS)).encode()


@asynccontextmanager
async def running(
    settings: Settings, *, raise_app_exceptions: bool = True
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://certcheck.test") as c:
            yield manager.app, c  # type: ignore[misc]


async def post(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes, media: str = "text/csv"
) -> httpx.Response:
    return await client.post(URL, content=body, headers={**headers, "Content-Type": media})


async def certificates(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    info = await client.get("/v1/registry", headers=headers)
    count: int = info.json()["certificates"]
    return count


async def assert_lock_free(engine: AsyncEngine) -> None:
    async with registry_writer(engine):
        pass  # RegistryBusy here would mean the aborted import kept the lock


@pytest.fixture
async def loaded(engine: AsyncEngine) -> None:
    await load(engine, [cert(n) for n in NUMBERS[:5]])


class TestUploadCaps:
    async def test_an_upload_over_the_cap_is_413_and_takes_no_lock(
        self, settings: Settings, headers: dict[str, str]
    ) -> None:
        capped = settings.model_copy(update={"import_max_upload_bytes": 200})
        async with running(capped) as (_, client):
            response = await post(client, headers, SNAPSHOT)
            assert_problem(response, 413, "UPLOAD_TOO_LARGE")
            info = (await client.get("/v1/registry", headers=headers)).json()
        assert info["last_sync"] is None  # refused before any run began

    async def test_a_chunked_upload_over_the_cap_is_413(
        self, settings: Settings, headers: dict[str, str]
    ) -> None:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 1024

        capped = settings.model_copy(update={"import_max_upload_bytes": 10_000})
        async with running(capped) as (_, client):
            response = await client.post(
                URL, content=body(), headers={**headers, "Content-Type": "text/csv"}
            )
        assert_problem(response, 413, "UPLOAD_TOO_LARGE")

    async def test_a_gzip_bomb_is_413_as_it_inflates_and_takes_no_lock(
        self, settings: Settings, headers: dict[str, str]
    ) -> None:
        # ~64 MiB of readable rows in a few hundred KiB: before the writer lock is taken, only
        # the size they inflate to can stop them.
        rows = "".join(f"{n},valid,Co.,,\n" for n in NUMBERS).encode()
        member = gzip.compress(rows * ((1 << 20) // len(rows)), 9)
        body = gzip.compress(CSV_HEADER.encode()) + member * 64
        capped = settings.model_copy(update={"import_max_content_bytes": 8 << 20})
        async with running(capped) as (_, client):
            response = await client.post(
                URL,
                content=body,
                headers={**headers, "Content-Type": "text/csv", "Content-Encoding": "gzip"},
            )
            problem = assert_problem(response, 413, "UPLOAD_TOO_LARGE")
            info = (await client.get("/v1/registry", headers=headers)).json()
        assert "after gunzip" in problem["detail"]
        assert info["last_sync"] is None  # refused before any run began

    async def test_broken_gzip_is_still_an_invalid_snapshot(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            URL,
            content=gzip.compress(SNAPSHOT)[:-12],
            headers={**headers, "Content-Type": "text/csv", "Content-Encoding": "gzip"},
        )
        assert_problem(response, 422, "INVALID_SNAPSHOT")

    async def test_an_endless_csv_line_is_422_without_reading_it_whole(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        # Concatenated gzip members: 64 MiB of zeros after the header, built in no time.
        body = gzip.compress(CSV_HEADER.encode()) + gzip.compress(b"0" * (1 << 20), 9) * 64
        response = await client.post(
            URL,
            content=body,
            headers={**headers, "Content-Type": "text/csv", "Content-Encoding": "gzip"},
        )
        problem = assert_problem(response, 422, "INVALID_SNAPSHOT")
        assert "line 2 is too long" in problem["detail"]

    @pytest.mark.parametrize("media", ["text/csv", "application/x-ndjson"])
    async def test_a_flood_of_blank_lines_is_422(
        self, client: httpx.AsyncClient, headers: dict[str, str], media: str
    ) -> None:
        head = CSV_HEADER.encode() if media == "text/csv" else b""
        body = gzip.compress(head) + gzip.compress(b"\n" * (1 << 20), 9) * 8
        response = await client.post(
            URL,
            content=body,
            headers={**headers, "Content-Type": media, "Content-Encoding": "gzip"},
        )
        problem = assert_problem(response, 422, "INVALID_SNAPSHOT")
        assert "blank lines" in problem["detail"]


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Holds every import, for ever, once it has written everything; set when one is held."""
    reached = asyncio.Event()

    async def write_state_then_hang(conn: AsyncConnection, **values: Any) -> None:
        await state.write_state(conn, **values)
        reached.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(importer, "write_state", write_state_then_hang)
    return reached


@pytest.mark.usefixtures("loaded")
class TestAbortedImport:
    async def test_past_its_deadline_it_rolls_back_and_frees_the_lock(
        self, settings: Settings, engine: AsyncEngine, headers: dict[str, str], held: asyncio.Event
    ) -> None:
        quick = settings.model_copy(update={"import_timeout": 3.0})
        async with running(quick) as (_, client):
            response = await asyncio.wait_for(post(client, headers, SNAPSHOT), 30)
            assert_problem(response, 503, "IMPORT_TIMEOUT")
            assert held.is_set()
            assert await certificates(client, headers) == 5
            info = (await client.get("/v1/registry", headers=headers)).json()
            assert info["last_sync"]["outcome"] == "failed"
            assert "longer than 3 seconds" in info["last_sync"]["error"]
        await assert_lock_free(engine)

    async def test_a_client_that_goes_away_cancels_it(
        self, settings: Settings, engine: AsyncEngine, headers: dict[str, str], held: asyncio.Event
    ) -> None:
        sent: list[dict[str, Any]] = []
        async with running(settings) as (app, client):
            await asyncio.wait_for(app(scope(headers), receive(held), sent_to(sent)), 30)
            assert await certificates(client, headers) == 5
        assert sent[0]["status"] == 503
        assert b"IMPORT_CANCELLED" in b"".join(m.get("body", b"") for m in sent[1:])
        await assert_lock_free(engine)


def scope(headers: dict[str, str]) -> dict[str, Any]:
    pairs = [
        (b"content-type", b"text/csv"),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"certcheck.test"), *pairs],
        "client": ("127.0.0.1", 50000),
        "server": ("certcheck.test", 80),
    }


def receive(held: asyncio.Event) -> Any:
    """The body at once; then, once the import is held, the client is gone."""
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": SNAPSHOT, "more_body": False}
        if not held.is_set():
            await held.wait()
        return {"type": "http.disconnect"}

    return receive


def sent_to(messages: list[dict[str, Any]]) -> Any:
    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    return send


class TestRegistryInfoFailures:
    async def test_a_database_error_is_reported_as_not_ready(
        self, client: httpx.AsyncClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def unreachable(_engine: AsyncEngine) -> None:
            raise OSError("connection refused")

        monkeypatch.setattr(registry_routes, "latest_run", unreachable)
        response = await client.get("/v1/registry", headers=headers)
        assert response.status_code == 200
        assert response.json()["last_sync"] is None

    async def test_anything_else_is_not_swallowed(
        self, settings: Settings, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(_engine: AsyncEngine) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(registry_routes, "latest_run", broken)
        async with running(settings, raise_app_exceptions=False) as (_, client):
            response = await client.get("/v1/registry", headers=headers)
        assert_problem(response, 500, "INTERNAL")
