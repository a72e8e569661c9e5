"""Re-check jobs over HTTP: idempotency, caps, other platforms, results, deletion."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import FromClause

from certcheck.config import Settings
from certcheck.db.tables import recheck_chunks, recheck_inputs, recheck_jobs, recheck_results
from certcheck.keys import Scope
from tests.api.helpers import (
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
from tests.conftest import make_key


@pytest.fixture
def settings(database_url: str) -> Settings:
    return job_settings(database_url)


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load_job_registry(client, engine)


BODY = ndjson(*({"cert_no": number(i), "listing_id": str(i)} for i in range(12)))


async def rows(engine: AsyncEngine, table: FromClause) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


@pytest.mark.usefixtures("loaded")
class TestIdempotency:
    async def test_same_key_same_body_same_job(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        first = await submit(client, app, headers, BODY, **{"Idempotency-Key": "k-1"})
        again = await submit(client, app, headers, BODY, **{"Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 202
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers

    async def test_same_content_gzipped_is_the_same_body(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        first = await submit(client, app, headers, BODY, **{"Idempotency-Key": "k-2"})
        zipped = gzip.compress(BODY)
        again = await submit(
            client, app, headers, zipped, **{"Idempotency-Key": "k-2", "Content-Encoding": "gzip"}
        )
        assert again.json()["job_id"] == first.json()["job_id"]

    async def test_same_key_other_body_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        await submit(client, app, headers, BODY, **{"Idempotency-Key": "k-3"})
        other = await submit(client, app, headers, BODY + b"{}\n", **{"Idempotency-Key": "k-3"})
        assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
        assert await rows(engine, recheck_jobs) == 1

    async def test_keys_are_per_platform(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        theirs = {"Authorization": f"Bearer {await make_key(engine, Scope.BATCH, platform='b')}"}
        mine = await submit(client, app, headers, BODY, **{"Idempotency-Key": "k-4"})
        other = await submit(client, app, theirs, BODY + b"{}\n", **{"Idempotency-Key": "k-4"})
        assert other.status_code == 202
        assert other.json()["job_id"] != mine.json()["job_id"]

    async def test_concurrent_uploads_with_one_key_make_one_job(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        big = ndjson(*({"cert_no": number(i % 50)} for i in range(3000)))
        answers = await asyncio.gather(
            *(submit(client, app, headers, big, **{"Idempotency-Key": "k-5"}) for _ in range(4))
        )
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["job_id"] for a in answers}) == 1
        assert await rows(engine, recheck_jobs) == 1

    @pytest.mark.parametrize("key", ["", "x" * 256, "del\x7f", "with space"])
    async def test_unusable_key_is_422(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], key: str
    ) -> None:
        response = await submit(client, app, headers, BODY, **{"Idempotency-Key": key})
        assert_problem(response, 422, "INVALID_IDEMPOTENCY_KEY")


class TestCaps:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(
            database_url=database_url,
            max_registry_age=3600,
            job_workers=0,
            job_max_lines=10,
            job_max_upload_bytes=50_000,
            job_max_content_bytes=100_000,
            job_max_unfinished=2,
        )

    async def test_too_many_lines_is_413(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        assert_problem(await submit(client, app, headers, BODY), 413, "TOO_MANY_LINES")

    async def test_too_many_bytes_sent_is_413(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await submit(client, app, headers, b" " * 60_000 + b"{}\n")
        assert_problem(response, 413, "UPLOAD_TOO_LARGE")

    async def test_gzip_bomb_is_413(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        bomb = zlib.compress(b"\n" * (64 << 20), 9, wbits=31)
        response = await submit(client, app, headers, bomb, **{"Content-Encoding": "gzip"})
        assert_problem(response, 413, "UPLOAD_TOO_LARGE")

    async def test_unfinished_jobs_per_platform_is_429(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        for _ in range(2):
            assert (await submit(client, app, headers, b"{}\n")).status_code == 202
        refused = await submit(client, app, headers, b"{}\n")
        assert_problem(refused, 429, "TOO_MANY_JOBS")
        assert refused.headers["retry-after"]
        theirs = {"Authorization": f"Bearer {await make_key(engine, Scope.BATCH, platform='b')}"}
        assert (await submit(client, app, theirs, b"{}\n")).status_code == 202
        assert await rows(engine, recheck_jobs) == 3


@pytest.mark.usefixtures("loaded")
class TestOtherPlatforms:
    async def test_see_no_job_of_ours(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        created = await submit(client, app, headers, BODY)
        location = created.headers["location"]
        await finished(client, location, headers)
        theirs = {"Authorization": f"Bearer {await make_key(engine, Scope.BATCH, platform='b')}"}
        assert_problem(await client.get(location, headers=theirs), 404, "JOB_NOT_FOUND")
        answer = await client.get(f"{location}/results", headers=theirs)
        assert_problem(answer, 404, "JOB_NOT_FOUND")
        assert_problem(await client.delete(location, headers=theirs), 404, "JOB_NOT_FOUND")
        assert (await client.get(location, headers=headers)).json()["status"] == "done"

    async def test_job_ids_are_unguessable(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        ids = [(await submit(client, app, headers, BODY)).json()["job_id"] for _ in range(2)]
        assert all(len(i) >= 22 for i in ids)
        assert ids[0][:8] != ids[1][:8]  # nothing sequential or time-ordered


@pytest.mark.usefixtures("loaded")
class TestResults:
    async def test_filter_by_decision(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = (
            ndjson(
                {"cert_no": number(1), "model": "XK-200"},
                {"cert_no": number(99)},
                {"cert_no": number(2), "model": "other"},
                {"cert_no": number(3)},
            )
            + b"oops\n"
        )
        created = await submit(client, app, headers, body)
        location = created.headers["location"]
        await finished(client, location, headers)
        lines = {
            d: [r["line"] for r in await results(client, location, headers, d)]
            for d in ("allow", "block", "review")
        }
        assert lines == {"allow": [1, 4], "block": [2, 5], "review": [3]}
        unknown = await client.get(f"{location}/results?decision=maybe", headers=headers)
        assert_problem(unknown, 422, "VALIDATION_FAILED")

    async def test_unknown_job_is_404(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        url = app.url_path_for("get_recheck_results", job_id="rj_nosuchjob")
        assert_problem(await client.get(url, headers=headers), 404, "JOB_NOT_FOUND")


class TestUnfinished:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, max_registry_age=3600, job_workers=0)

    async def test_results_wait_for_the_job(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        location = (await submit(client, app, headers, BODY)).headers["location"]
        early = await client.get(f"{location}/results", headers=headers)
        assert_problem(early, 409, "JOB_NOT_FINISHED")
        assert early.headers["retry-after"] == "5"

    async def test_delete_cancels_and_forgets(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        location = (await submit(client, app, headers, BODY)).headers["location"]
        assert await rows(engine, recheck_inputs) > 0
        deleted = await client.delete(location, headers=headers)
        assert deleted.status_code == 204
        assert deleted.content == b""
        assert_problem(await client.get(location, headers=headers), 404, "JOB_NOT_FOUND")
        assert_problem(await client.delete(location, headers=headers), 404, "JOB_NOT_FOUND")
        for table in (recheck_jobs, recheck_chunks, recheck_inputs, recheck_results):
            assert await rows(engine, table) == 0


@pytest.mark.usefixtures("loaded")
class TestDeleteFinished:
    async def test_results_go_with_the_job(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        await run_job(client, app, headers, BODY)
        assert await rows(engine, recheck_results) == 3
        (job_id,) = [j for j in await _job_ids(engine)]
        url = app.url_path_for("delete_recheck_job", job_id=job_id)
        assert (await client.delete(url, headers=headers)).status_code == 204
        assert await rows(engine, recheck_results) == 0


async def _job_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list(await conn.scalars(select(recheck_jobs.c.id)))
