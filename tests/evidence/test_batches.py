"""The fast paths that make a batch of records: the same rows and figures as the plain ones.

job_ready (a job's chunk) and batch_of (the buffer) make rows with rows_of, each distinct
value once; here they are held to row_of, one check at a time, and to each other. Pure: no
database (the writes are tested in test_stats_store.py on both).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as sqlite_dialect
from sqlalchemy.ext.asyncio import create_async_engine

from certcheck.api.schemas import VerifyRequest
from certcheck.db import bulk
from certcheck.db.tables import check_records
from certcheck.evidence import store
from certcheck.evidence.records import (
    COLUMNS,
    Checked,
    Requested,
    ShownOnce,
    Source,
    micros,
    moment_of,
    row_of,
    staged_row,
)
from certcheck.evidence.staged import STAGE_COLUMNS
from certcheck.verification.numbers import ShanghaiDay, today_in_shanghai
from tests.evidence.helpers import product_code_of
from tests.evidence.test_stats_store import random_checks


def job_lines(seed: int, count: int) -> list[Checked]:
    """Checks as one job's chunk makes them: one platform, source and job."""
    return [
        Checked(item.check, item.requested, Source.JOB, "shop-a", "rj_1")
        for item in random_checks(seed, count)
    ]


def test_a_job_chunks_records_are_each_check_made_alone() -> None:
    items = job_lines(seed=3, count=300)
    lines = [(i.check, i.requested) for i in items]

    postgresql = create_async_engine("postgresql+asyncpg://nowhere/db").dialect  # never connects
    ready = store.job_ready(lines, "shop-a", "rj_1", postgresql, ShownOnce(keep=False))

    assert [row[: len(COLUMNS)] for row in ready.rows] == [row_of(item) for item in items]
    assert ready.rows == store.batch_of(items).rows(staged=True)


def test_a_mixed_batch_has_every_check_once() -> None:
    items = random_checks(seed=5, count=300)  # platforms and sources mixed

    batch = store.batch_of(items)

    assert sorted(batch.rows()) == sorted(row_of(item) for item in items)


def test_staged_rows_end_with_what_the_statistics_count() -> None:
    items = random_checks(seed=9, count=300)  # claimed codes None, "0901", "0902" and " "

    staged = store.batch_of(items).rows(staged=True)

    by_id = {item.check.check_id: item for item in items}
    assert len(staged) == len(items)
    assert {len(row) for row in staged} == {len(STAGE_COLUMNS)}
    for row in staged:
        item = by_id[row[0]]
        assert row[: len(COLUMNS)] == row_of(item)
        assert row[len(COLUMNS) :] == (
            product_code_of(item),
            today_in_shanghai(item.check.checked_at),
            item.check.decision.reason.value,
        )
    assert {row[-3] for row in staged} >= {"", "0901", "0902"}
    assert len({row[-2] for row in staged}) > 1


def test_a_row_made_on_the_request_path_is_the_batch_row() -> None:
    items = random_checks(seed=11, count=300)
    staged = {row[0]: row for row in store.batch_of(items).rows(staged=True)}

    for item in items:
        alone = staged_row(item.check, item.requested, item.platform, item.source, item.job_id)
        assert alone == staged[item.check.check_id]
        assert alone[len(COLUMNS) :] == (
            product_code_of(item),
            today_in_shanghai(item.check.checked_at),
            item.check.decision.reason.value,
        )


def test_a_verify_request_is_recorded_as_its_requested_fields() -> None:
    (item,) = random_checks(seed=13, count=1)
    body = VerifyRequest(
        cert_no="ignored: the check's number is recorded",
        product_code=" 0901",
        model="M-1",
        manufacturer="Maker",
        listing_id="sku-1",
        merchant_id="m-1",
    )
    asked = Requested(" 0901", "M-1", "Maker", "sku-1", "m-1")

    row = staged_row(item.check, body, "shop-a", Source.VERIFY)

    assert row == staged_row(item.check, asked, "shop-a", Source.VERIFY)
    assert row[5:11] == (item.check.cert_no, " 0901", "M-1", "Maker", "sku-1", "m-1")


def test_bind_processors_run_once_per_object_and_alike() -> None:
    dialect = sqlite_dialect()
    statement = bulk.statement(insert(check_records), dialect, COLUMNS)
    rows = [row_of(item) for item in random_checks(seed=7, count=50)]
    moment = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    # The same instant in another zone: equal, but an object of its own.
    beijing = moment.astimezone(timezone(timedelta(hours=8)))
    shared = [(*row[:1], moment, *row[2:14], beijing) for row in rows]

    made = statement.rows(shared)

    processors = statement.processors
    assert made == [
        tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in shared
    ]


class TestShanghaiDay:
    """The request path's day of a check is today_in_shanghai's, whatever order times come in."""

    MIDNIGHT = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)  # 00:00 on 6 December in Beijing

    @given(
        st.lists(
            st.integers(min_value=-3 * 86_400_000_000, max_value=3 * 86_400_000_000),
            min_size=1,
            max_size=50,
        ),
        st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
    )
    def test_any_sequence_of_times_gets_the_zones_day(
        self, offsets: list[int], zone: timezone
    ) -> None:
        days = ShanghaiDay()
        for offset in offsets:
            moment = (self.MIDNIGHT + timedelta(microseconds=offset)).astimezone(zone)
            assert days.of(moment) == today_in_shanghai(moment)

    def test_the_last_microsecond_of_a_day_and_the_first_of_the_next(self) -> None:
        days = ShanghaiDay()
        before = self.MIDNIGHT - timedelta(microseconds=1)
        assert [days.of(t) for t in (before, self.MIDNIGHT, before)] == [
            datetime(2026, 12, 5).date(),
            datetime(2026, 12, 6).date(),
            datetime(2026, 12, 5).date(),
        ]


@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
def test_a_rows_time_in_microseconds_is_the_time(moment: datetime) -> None:
    assert moment_of(micros(moment)) == moment
    assert micros(moment + timedelta(microseconds=1)) == micros(moment) + 1


def test_a_rows_times_are_micros_of_the_checks() -> None:
    item = random_checks(seed=5, count=1)[0]
    row = row_of(item)
    assert row[COLUMNS.index("checked_at")] == micros(item.check.checked_at)
    assert row[COLUMNS.index("registry_as_of")] == micros(item.check.registry_as_of)
