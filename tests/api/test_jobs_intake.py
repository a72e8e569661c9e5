"""Re-check uploads that try to cost the service: NUL, foreign encodings, floods and bombs."""

from __future__ import annotations

import gzip

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from tests.api.helpers import NDJSON, finished, job_settings, load_job_registry, results, submit

pytestmark = pytest.mark.usefixtures("loaded")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return job_settings(database_url)


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load_job_registry(client, engine)


async def reasons(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], body: bytes, media: str
) -> list[str]:
    created = await submit(client, app, headers, body, media)
    assert created.status_code == 202, created.text
    job = await finished(client, created.headers["location"], headers)
    assert job["status"] == "done", job
    return [r["reason"] for r in await results(client, created.headers["location"], headers)]


class TestUnstorableLines:
    @pytest.mark.parametrize(
        ("body", "media"),
        [
            (b'{"cert_no":"2024010901000001","listing_id":"a\\u0000b"}\n', NDJSON),
            (b'{"cert_no":"2024010901000001","listing_id":"a\x00b"}\n', NDJSON),
            (b"cert_no,listing_id\n2024010901000001,a\x00b\n", "text/csv"),
        ],
        ids=["escaped-nul", "raw-nul", "csv-nul"],
    )
    async def test_nul_is_a_malformed_line_not_a_failed_job(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        body: bytes,
        media: str,
    ) -> None:
        second = (
            b"2024010901000002,x\n" if media == "text/csv" else b'{"cert_no":"2024010901000002"}\n'
        )
        got = await reasons(client, app, headers, body + second, media)
        assert got == ["MALFORMED", "VALID"]


class TestForeignEncoding:
    async def test_gb18030_ndjson_lines_are_malformed_lines(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = (
            '{"cert_no":"2024010901000001","manufacturer":"示例电子"}\n'
            '{"cert_no":"2024010901000002"}\n'
        )
        got = await reasons(client, app, headers, body.encode("gb18030"), NDJSON)
        assert got == ["MALFORMED", "VALID"]

    async def test_gb18030_csv_rows_are_malformed_lines(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = "cert_no,manufacturer\n2024010901000001,示例电子\n2024010901000002,\n"
        got = await reasons(client, app, headers, body.encode("gb18030"), "text/csv")
        assert got == ["MALFORMED", "VALID"]


class TestFloods:
    async def test_a_flood_of_gzipped_blank_lines_is_413(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = gzip.compress(b"\n" * (1 << 20), 9) * 8  # 8 Mi blank lines in 8 KiB
        response = await submit(client, app, headers, body, **{"Content-Encoding": "gzip"})
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "TOO_MANY_LINES"

    async def test_truncated_gzip_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = gzip.compress(b'{"cert_no":"2024010901000001"}\n' * 1000)[:-20]
        response = await submit(client, app, headers, body, **{"Content-Encoding": "gzip"})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "INVALID_GZIP"
