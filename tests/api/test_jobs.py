"""Re-check jobs over HTTP: upload NDJSON, CSV or gzip, follow the job, read its results."""

from __future__ import annotations

import gzip

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from tests.api.helpers import (
    NDJSON,
    assert_problem,
    finished,
    job_settings,
    load_job_registry,
    ndjson,
    number,
    results,
    run_job,
    submit,
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return job_settings(database_url)


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load_job_registry(client, engine)


@pytest.mark.usefixtures("loaded")
class TestCreateJob:
    async def test_ndjson_lines_answered_in_order(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        items = [{"cert_no": number(i), "listing_id": f"sku-{i}"} for i in range(55)]
        created = await submit(client, app, headers, ndjson(*items))
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        assert created.headers["location"] == app.url_path_for("get_recheck_job", job_id=job_id)
        assert created.json()["status"] == "queued"
        assert created.json()["total"] == 55
        job = await finished(client, created.headers["location"], headers)
        got = await results(client, created.headers["location"], headers)
        assert [r["listing_id"] for r in got] == [f"sku-{i}" for i in range(55)]
        assert [r["line"] for r in got] == list(range(1, 56))
        assert [r["reason"] for r in got] == ["VALID"] * 50 + ["NOT_FOUND"] * 5
        assert job["processed"] == job["total"] == 55
        assert job["counts"] == {"allow": 50, "block": 5, "review": 0}
        assert job["invalid_lines"] == 0
        assert job["started_at"] is not None
        assert job["finished_at"] is not None
        assert job["registry_as_of"] == got[0]["registry_as_of"]

    async def test_awkward_lines(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = (
            b'\n{"cert_no": "%s", "listing_id": "a"}\r\n'
            b"   \n"
            b"{not json\n"
            b'{"cert_no": "garbage", "listing_id": "b"}\n'
            b'{"cert_no": 7}\n'
            b'{"colour": "red"}\n'
            b'{"cert_no": "x", "cert_no": "y"}\n'
            b"[1, 2]\n"
            b'{"product_code": "0908", "listing_id": "c"}'
        ) % number(1).encode()
        job, got = await run_job(client, app, headers, body)
        assert [(r["line"], r["reason"]) for r in got] == [
            (2, "VALID"),
            (4, "MALFORMED"),
            (5, "MALFORMED"),
            (6, "MALFORMED"),
            (7, "MALFORMED"),
            (8, "MALFORMED"),
            (9, "MALFORMED"),
            (10, "NOT_REQUIRED"),
        ]
        unreadable = [r for r in got if "error" in r]
        assert [r["line"] for r in unreadable] == [4, 6, 7, 8, 9]
        assert all(r["decision"] == "block" and r["certificate"] is None for r in unreadable)
        assert "cert_no" in unreadable[1]["error"]
        assert "twice" in unreadable[3]["error"]
        assert got[2]["listing_id"] == "b"
        assert "error" not in got[2]  # a malformed number is a decision, not an unreadable line
        assert (job["total"], job["invalid_lines"]) == (8, 5)
        assert job["counts"] == {"allow": 2, "block": 6, "review": 0}

    async def test_malformed_lines_say_why(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = (
            b'{"cert_no": "2099-0109-01234567"}\n{not json\n{"cert_no": "%s"}' % number(1).encode()
        )
        _, got = await run_job(client, app, headers, body)
        future, unreadable, valid = got
        assert (future["reason"], future["cert_no_given"]) == ("MALFORMED", "2099-0109-01234567")
        assert future["detail"].startswith("2099010901234567: year 2099 is in the future. ")
        assert (unreadable["reason"], unreadable["cert_no_given"]) == ("MALFORMED", None)
        assert unreadable["detail"] == unreadable["error"]
        assert unreadable["detail"].startswith("invalid JSON: ")
        assert (valid["reason"], valid["cert_no_given"], valid["detail"]) == ("VALID", None, None)

    async def test_csv_with_bom_crlf_and_ragged_rows(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = (
            "\ufeffcert_no,model,listing_id\r\n"
            f"{number(2)},XK-200,a\r\n"
            f"{number(3)},nope\r\n"
            "\r\n"
            f'{number(4)},"XK-200S",b\r\n'
            f"{number(5)},XK-200,c,extra\r\n"
            f"{number(6)},nope,d"
        ).encode()
        job, got = await run_job(client, app, headers, body, media="text/csv")
        assert [(r["line"], r["reason"], r["listing_id"]) for r in got] == [
            (2, "VALID", "a"),
            (3, "MALFORMED", None),
            (5, "VALID", "b"),
            (6, "MALFORMED", None),
            (7, "MODEL_NOT_COVERED", "d"),
        ]
        assert got[1]["error"] == "expected 3 fields as in the header, found 2"
        assert job["counts"] == {"allow": 2, "block": 2, "review": 1}

    @pytest.mark.parametrize("media", [NDJSON, "text/csv; charset=utf-8"])
    async def test_gzip(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], media: str
    ) -> None:
        rows = [{"cert_no": number(i), "listing_id": str(i)} for i in range(10)]
        if media == NDJSON:
            body = ndjson(*rows)
        else:
            body = (
                "cert_no,listing_id\n"
                + "".join(f"{r['cert_no']},{r['listing_id']}\n" for r in rows)
            ).encode()
        job, got = await run_job(
            client, app, headers, gzip.compress(body), media=media, **{"Content-Encoding": "gzip"}
        )
        assert [r["listing_id"] for r in got] == [str(i) for i in range(10)]
        assert job["counts"]["allow"] == 10

    @pytest.mark.parametrize(
        ("media", "encoding", "code"),
        [
            ("application/json", "", "UNSUPPORTED_MEDIA_TYPE"),
            ("text/csv; charset=latin-1", "", "UNSUPPORTED_MEDIA_TYPE"),
            (NDJSON, "br", "UNSUPPORTED_CONTENT_ENCODING"),
        ],
    )
    async def test_unsupported_is_415(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        media: str,
        encoding: str,
        code: str,
    ) -> None:
        extra = {"Content-Encoding": encoding} if encoding else {}
        response = await submit(client, app, headers, b"{}\n", media, **extra)
        assert_problem(response, 415, code)

    @pytest.mark.parametrize(
        ("body", "media", "code"),
        [
            (b"\n \n", NDJSON, "EMPTY_UPLOAD"),
            (b"cert_no,colour\n1,red\n", "text/csv", "INVALID_CSV_HEADER"),
        ],
    )
    async def test_unusable_upload_is_422(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        body: bytes,
        media: str,
        code: str,
    ) -> None:
        assert_problem(await submit(client, app, headers, body, media), 422, code)

    async def test_broken_gzip_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = gzip.compress(b"{}\n" * 100)[:-10]
        response = await submit(client, app, headers, body, **{"Content-Encoding": "gzip"})
        assert_problem(response, 422, "INVALID_GZIP")

    async def test_needs_the_batch_scope(
        self, client: httpx.AsyncClient, app: FastAPI, verify_only: dict[str, str]
    ) -> None:
        assert_problem(await submit(client, app, verify_only, b"{}\n"), 403, "FORBIDDEN")
        assert_problem(await submit(client, app, {}, b"{}\n"), 401, "UNAUTHENTICATED")
