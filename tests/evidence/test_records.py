"""Check records over HTTP: every check is readable by its platform alone, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from ulid import ULID

from certcheck.checking import Check
from certcheck.config import Settings
from certcheck.db.tables import check_records, signal_counts
from certcheck.evidence import store
from certcheck.evidence.records import Checked, Requested, Source, row_of
from certcheck.keys import Scope
from certcheck.verification.decision import MALFORMED_DECISION
from tests.api.helpers import assert_problem, finished, results, submit
from tests.conftest import load, make_key
from tests.evidence.helpers import record
from tests.factories import cert

VALID = "2024010901234567"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        max_registry_age=3600,
        check_flush_seconds=0.1,
        job_chunk_lines=2,
        job_poll_interval=0.1,
    )


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, [cert(VALID)])
    await client.get("/readyz")


@pytest.fixture
async def other(engine: AsyncEngine) -> dict[str, str]:
    """A key of another platform, with every scope."""
    return {"Authorization": f"Bearer {await make_key(engine, *Scope, platform='shop-2')}"}


async def verify(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(app.url_path_for("verify_one"), json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.usefixtures("loaded")
class TestCheckRecords:
    async def test_a_verify_is_recorded_as_answered(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = {
            "cert_no": f"CCC: {VALID}",
            "product_code": "0901",
            "model": "XK-300",
            "listing_id": "sku-1",
            "merchant_id": "m-1",
        }
        answer = await verify(client, app, headers, body)

        got = await record(client, answer["check_id"], headers)

        assert got == {
            "check_id": answer["check_id"],
            "platform": "shop",
            "source": "verify",
            "job_id": None,
            "checked_at": answer["checked_at"],
            "request": {
                "cert_no": VALID,
                "product_code": "0901",
                "model": "XK-300",
                "manufacturer": None,
                "listing_id": "sku-1",
                "merchant_id": "m-1",
            },
            "decision": "review",
            "reason": "MODEL_NOT_COVERED",
            "reasons": ["MODEL_NOT_COVERED"],
            "certificate": answer["certificate"],
            "registry_as_of": answer["registry_as_of"],
        }

    async def test_the_certificate_is_kept_as_the_text_the_answer_showed(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        engine: AsyncEngine,
    ) -> None:
        answer = await verify(client, app, headers, {"cert_no": VALID})
        await record(client, answer["check_id"], headers)

        async with engine.connect() as conn:
            kept = await conn.scalar(
                select(check_records.c.certificate).where(
                    check_records.c.check_id == answer["check_id"]
                )
            )

        # Staged as the answer's JSON bytes: the database must have made them text.
        assert isinstance(kept, str), type(kept)
        assert json.loads(kept) == answer["certificate"]

    async def test_malformed_number_is_recorded_as_null(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        answer = await verify(client, app, headers, {"cert_no": "12345"})
        got = await record(client, answer["check_id"].lower(), headers)  # any case
        assert got["request"]["cert_no"] is None
        assert (got["decision"], got["certificate"]) == ("block", None)

    async def test_another_platform_gets_404_as_for_an_unknown_id(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        other: dict[str, str],
    ) -> None:
        answer = await verify(client, app, headers, {"cert_no": VALID})
        await record(client, answer["check_id"], headers)

        theirs = await client.get(f"/v1/checks/{answer['check_id']}", headers=other)
        unknown = await client.get(f"/v1/checks/{ULID()}", headers=other)
        receipt = await client.get(f"/v1/checks/{answer['check_id']}/receipt", headers=other)

        for response in (theirs, unknown, receipt):
            assert_problem(response, 404, "NOT_FOUND")
        assert theirs.json()["title"] == unknown.json()["title"]

    @pytest.mark.parametrize(
        "bad", ["123", "01JD3V6Q3C7M8Y3W1F0B2K5N9U!", "81JD3V6Q3C7M8Y3W1F0B2K5N9T"]
    )
    async def test_not_a_ulid_is_malformed(
        self, client: httpx.AsyncClient, headers: dict[str, str], bad: str
    ) -> None:
        assert_problem(await client.get(f"/v1/checks/{bad}", headers=headers), 422, "MALFORMED")

    @pytest.mark.parametrize("far", ["7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "00000000000000000000000000"])
    async def test_ids_of_impossible_times_are_unknown(
        self, client: httpx.AsyncClient, headers: dict[str, str], far: str
    ) -> None:
        assert_problem(await client.get(f"/v1/checks/{far}", headers=headers), 404, "NOT_FOUND")

    async def test_batch_items_are_recorded(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        items = [{"cert_no": VALID, "listing_id": "a"}, {"cert_no": "x", "merchant_id": "m"}]
        response = await client.post(
            app.url_path_for("verify_batch"), json={"items": items}, headers=headers
        )
        first, second = response.json()["results"]

        a = await record(client, first["check_id"], headers)
        b = await record(client, second["check_id"], headers)

        assert (a["source"], a["request"]["listing_id"], a["decision"]) == ("batch", "a", "allow")
        assert (b["source"], b["request"]["merchant_id"], b["reason"]) == (
            "batch",
            "m",
            "MALFORMED",
        )

    async def test_job_lines_are_recorded_with_the_job(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], engine: AsyncEngine
    ) -> None:
        lines = [
            b'{"cert_no": "%s", "listing_id": "l1", "merchant_id": "m1"}' % VALID.encode(),
            b"not json",
            b'{"product_code": "0908"}',
        ]
        created = await submit(client, app, headers, b"\n".join(lines) + b"\n")
        location = created.headers["Location"]
        job = await finished(client, location, headers)
        answers = await results(client, location, headers)

        # Written with the chunks' results, not through the buffer: there when the job is done.
        records = [
            (await client.get(f"/v1/checks/{a['check_id']}", headers=headers)).json()
            for a in answers
        ]

        assert job["status"] == "done"
        assert [r["source"] for r in records] == ["job"] * 3
        assert {r["job_id"] for r in records} == {job["job_id"]}
        assert records[0]["request"]["merchant_id"] == "m1"
        assert records[1]["request"] == dict.fromkeys(records[1]["request"])  # all null
        assert [r["reason"] for r in records] == [a["reason"] for a in answers]
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(check_records)) == 3


def old_row(days: int, platform: str = "shop") -> Checked:
    when = datetime.now(UTC) - timedelta(days=days)
    check = Check(
        check_id=str(ULID.from_datetime(when)),
        cert_no=None,
        decision=MALFORMED_DECISION,
        certificate=None,
        registry_as_of=when,
        checked_at=when,
    )
    return Checked(check, Requested(), Source.VERIFY, platform)


async def test_a_records_times_are_kept_to_the_microsecond(engine: AsyncEngine) -> None:
    """Rows carry their times as microseconds (records.micros); each database makes them its
    times again as it inserts them, the signals' newest time too."""
    # A day's partition each (one write spans the days between its first and last time).
    odd = [
        datetime(2026, 12, 6, 15, 59, 59, 999_999, tzinfo=UTC),  # Beijing's midnight, almost
        datetime(2026, 12, 6, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 6, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2026, 12, 7, 8, 5, 6, 7, tzinfo=timezone(timedelta(hours=8))),  # 00:05 UTC
    ]
    items = []
    for n, when in enumerate(odd):
        as_of = when - timedelta(microseconds=n + 1)
        check = Check(str(ULID.from_datetime(when)), VALID, MALFORMED_DECISION, None, as_of, when)
        items.append(Checked(check, Requested(), Source.VERIFY, "shop"))
    await store.write_all(engine, store.batch_of(items))

    async with engine.connect() as conn:
        kept = (
            await conn.execute(
                select(
                    check_records.c.check_id,
                    check_records.c.checked_at,
                    check_records.c.registry_as_of,
                )
            )
        ).all()
        newest = await conn.scalar(select(signal_counts.c.last_checked_at))
    assert sorted(kept) == sorted(
        (i.check.check_id, i.check.checked_at, i.check.registry_as_of) for i in items
    )
    assert newest == max(odd)


class TestRetention:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, check_retention_days=30)

    async def test_past_retention_answers_404_before_purge_and_purge_removes(
        self, client: httpx.AsyncClient, engine: AsyncEngine, headers: dict[str, str]
    ) -> None:
        kept_check, expired_check = old_row(29), old_row(31)
        await store.write_all(engine, store.batch_of([kept_check, expired_check]))
        kept, expired = row_of(kept_check), row_of(expired_check)

        kept_answer = await client.get(f"/v1/checks/{kept[0]}", headers=headers)
        assert kept_answer.status_code == 200, kept_answer.text
        assert_problem(
            await client.get(f"/v1/checks/{expired[0]}", headers=headers), 404, "NOT_FOUND"
        )

        done = await store.purge(engine, 30)

        # The record past retention goes with its day (PostgreSQL's partition), and its figures.
        postgres = engine.dialect.name == "postgresql"
        assert done.startswith("dropped 1 day partitions" if postgres else "deleted 1 records")
        assert done.endswith("; forgot 1 statistics rows and 0 signal rows"), done

        async with engine.connect() as conn:
            left = set(await conn.scalars(select(check_records.c.check_id)))
        assert left == {kept[0]}
