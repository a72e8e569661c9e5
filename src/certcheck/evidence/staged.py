"""A batch of check records written through the connection's staging table, from which the
database inserts them and folds what they add into the statistics and signals.

Why the database counts: made in Python, a record's figures (its counters, memberships, signal
keys, evidence and merchants, then their rows made ready for the driver) cost the serving
process 6-15 µs a record beside the row itself, on the core that answers requests. The
database has the rows anyway: PostgreSQL groups them on its own core, and SQLite runs its
statements with the GIL released, so the event loop goes on meanwhile. Python makes what SQL
would make differently on the two databases: the product code a check counts under
(records.counted_code), its China Standard Time day and its most severe reason.

The staging table is temporary (one per connection, created by the first batch a connection
writes) and emptied around every batch (PostgreSQL: at commit), so a failed batch leaves
nothing behind. On PostgreSQL every upsert reads its rows in primary-key order: two processes
folding at once lock the same rows in the same order and cannot deadlock; the counters, which
every writer updates, come last, so they are held for the shortest time. SQLite has one writer
at a time, and its rows are not sorted for it (`_in_key_order`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Dialect,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateTable

from certcheck.db import bulk
from certcheck.db.tables import check_records, signal_merchants
from certcheck.db.types import bytewise
from certcheck.evidence.records import COLUMNS
from certcheck.evidence.tally import (
    BOTH,
    EVIDENCE_CHARS,
    EVIDENCE_IDS,
    LISTING,
    MERCHANT,
    MISMATCHES,
    SignalKind,
)
from certcheck.verification.records import Verdict

# Each staged row: the record's columns, then what its figures are counted under.
STAGE_COLUMNS = (*COLUMNS, "code", "day", "reason")
_TIMES = ("checked_at", "registry_as_of")  # staged as records.micros (_PG_TIME, _SQLITE_TIME)
_COPY_SLICE = 500  # rows a COPY: encoded between two turns of the event loop


# Not in the application's metadata: no migration makes it, each connection does.
_stage = Table(
    "check_stage",
    MetaData(),
    *(
        # The certificate as the answer's JSON bytes (records.staged_row): text once inserted;
        # the times as microseconds since the Unix epoch (records.micros): times once inserted.
        Column(
            c.name,
            LargeBinary()
            if c.name == "certificate"
            else BigInteger()
            if c.name in _TIMES
            else bytewise(c.type),
            nullable=c.nullable,
        )
        for c in check_records.columns
    ),
    Column("code", bytewise(Text()), nullable=False),  # records.counted_code
    Column("day", Date, nullable=False),  # China Standard Time (today_in_shanghai)
    Column("reason", bytewise(String(32)), nullable=False),  # the answer's `reason`: the first
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
if tuple(c.name for c in _stage.columns) != STAGE_COLUMNS:
    raise RuntimeError("check_stage's columns are not STAGE_COLUMNS")
# A batch's merchants of signals that already have another first merchant: the ones
# signal_merchants may gain. Emptied like the stage.
_extra = Table(
    "signal_extra",
    MetaData(),
    *(
        Column(c.name, bytewise(c.type), nullable=False)
        for c in signal_merchants.columns
        if c.name in ("platform", "cert_no", "kind", "merchant_id")
    ),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)


def _create(dialect: Dialect) -> tuple[str, ...]:
    return tuple(
        str(CreateTable(table, if_not_exists=True).compile(dialect=dialect))
        for table in (_stage, _extra)
    )


def _insert(dialect: Dialect) -> bulk.Statement:
    return bulk.statement(insert(_stage), dialect, STAGE_COLUMNS)


def ready(rows: list[tuple[Any, ...]], dialect: Dialect) -> list[tuple[Any, ...]]:
    """Staged rows (STAGE_COLUMNS order) as the driver takes them. CPU only: a worker
    thread. asyncpg's COPY takes the rows as they are; SQLite takes (SQL, parameters) pairs,
    multi-row INSERTs of the values through their bind processors (bulk.Statement)."""
    if dialect.name == "postgresql":
        return rows
    statement = bulk.per_dialect(_insert, dialect)
    return list(statement.sqlite_runs(statement.rows(rows)))


_RECORDS = ", ".join(COLUMNS)
_MISMATCH_ROWS = " UNION ALL ".join(
    f"SELECT '{reason.value}' AS reason, '{kind.value}' AS kind"
    for reason, kind in MISMATCHES.items()
)
_SIGNAL_KEY = "platform, cert_no, kind"


def _kinds(staged: str = "cert_no IS NOT NULL") -> str:
    """The CTE `k`: each check of the `staged` rows under every signal it feeds. Every check of
    a number feeds MANY_MERCHANTS, and each of its reasons that says the claim is not covered
    the signal of that kind (tally.MISMATCHES). An allowed check has none of those reasons
    (tally.py holds that true): most checks are allowed, and their reasons' text is not
    matched against each of those reasons (3.4 of 4.6 us a record of a verify's flush)."""
    return f"""k AS MATERIALIZED (
    SELECT platform, cert_no, '{SignalKind.MANY_MERCHANTS.value}' AS kind, check_id,
        checked_at, merchant_id
    FROM check_stage WHERE {staged}
    UNION ALL
    SELECT s.platform, s.cert_no, m.kind, s.check_id, s.checked_at, s.merchant_id
    FROM check_stage AS s
    JOIN ({_MISMATCH_ROWS}) AS m
        ON ' ' || s.reasons || ' ' LIKE '% ' || m.reason || ' %'
    WHERE {staged} AND s.decision <> '{Verdict.ALLOW.value}'
)"""  # nosec B608


# A staged time (records.micros) as each database keeps a UTCDateTime: PostgreSQL's
# timestamptz (exact: the microseconds are a double below 2**53 until the year 2255), and the
# text SQLAlchemy writes for SQLite (db/types.py), in whole seconds and then the microseconds
# (datetime() writes the seconds' text in one formatting call, strftime() in six: 0.35 us less
# a time, three times a record).
_PG_TIME = "(timestamptz 'epoch' + {0} * interval '1 microsecond')"
_SQLITE_TIME = "(datetime({0} / 1000000, 'unixepoch') || printf('.%06d', {0} % 1000000))"


def _insert_records(certificate_text: str, time: str) -> str:
    """The staged records into check_records, `certificate_text` making their certificates'
    UTF-8 bytes the text the column holds and `time` their times what the columns hold."""
    selected = ", ".join(
        certificate_text if c == "certificate" else time.format(c) if c in _TIMES else c
        for c in COLUMNS
    )
    return f"INSERT INTO check_records ({_RECORDS}) SELECT {selected} FROM check_stage"  # nosec B608


def _in_key_order(sql: str, columns: int, *, ordered: bool) -> str:
    """`sql` with its `{order}` sorting the rows by their first `columns`, or not at all: the
    key order is for PostgreSQL's locks (the module's docstring), and SQLite sorted them for
    nothing (0.4-1.1 us a record of a verify's flush, the signals' sort alone)."""
    numbers = ", ".join(str(n) for n in range(1, columns + 1))
    return sql.format(order=f"ORDER BY {numbers}\n" if ordered else "")


# Names and constants of this module only: nothing in these statements comes from a request.
_PAIRS = f"""INSERT INTO check_pairs
    (day, platform, listing, merchant, sides, product_code, reason, source)
SELECT * FROM (
    SELECT DISTINCT day, platform, coalesce(listing_id, '') AS listing,
        coalesce(merchant_id, '') AS merchant, CASE
            WHEN merchant_id IS NULL THEN '{LISTING}'
            WHEN listing_id IS NULL THEN '{MERCHANT}'
            ELSE '{BOTH}' END AS sides, code, reason, source
    FROM check_stage WHERE listing_id IS NOT NULL OR merchant_id IS NOT NULL
) AS m WHERE true
{{order}}ON CONFLICT DO NOTHING"""  # nosec B608
_COUNTS = """INSERT INTO check_counts AS t
    (day, platform, product_code, source, reason, decision, checks)
SELECT day, platform, code, source, reason, decision, count(*) FROM check_stage WHERE true
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (day, platform, product_code, source, reason, decision)
DO UPDATE SET checks = t.checks + excluded.checks"""
# A batch's ids come before the older ones in `evidence`; ids are of one width, so cutting
# at EVIDENCE_CHARS keeps whole ids. `totals` (one row a signal: its checks, evidence, newest
# check and smallest merchant id) is made by each database's statement below. A signal's
# first merchant is set once, by the first batch that names one, and counts as a merchant.
_UPSERT_SIGNALS = f"""INSERT INTO signal_counts AS t
    ({_SIGNAL_KEY}, checks, merchants, evidence, last_checked_at, first_merchant)
SELECT {_SIGNAL_KEY}, checks, CASE WHEN first_merchant IS NULL THEN 0 ELSE 1 END, evidence,
    last_checked_at, first_merchant
FROM totals WHERE true
{{order}}ON CONFLICT ({_SIGNAL_KEY}) DO UPDATE SET
    checks = t.checks + excluded.checks,
    merchants = t.merchants + CASE WHEN t.first_merchant IS NULL THEN excluded.merchants ELSE 0 END,
    evidence = substr(excluded.evidence || ' ' || t.evidence, 1, {EVIDENCE_CHARS}),
    last_checked_at = CASE WHEN excluded.last_checked_at > t.last_checked_at
        THEN excluded.last_checked_at ELSE t.last_checked_at END,
    first_merchant = coalesce(t.first_merchant, excluded.first_merchant)"""  # nosec B608
_SAME_SIGNAL = "{0}.platform = {1}.platform AND {0}.cert_no = {1}.cert_no AND {0}.kind = {1}.kind"
_EXTRA_KEY = f"{_SIGNAL_KEY}, merchant_id"
# The batch's merchants that are not a signal's first: each database's statement ends it.
_INTO_EXTRA = f"""INSERT INTO signal_extra ({_EXTRA_KEY})
SELECT DISTINCT k.platform, k.cert_no, k.kind, k.merchant_id"""
# Each signal's merchant count, plus the rows of `{0}` (one a merchant it gained) by key.
_ADD_MERCHANTS = f"""UPDATE signal_counts AS t SET merchants = t.merchants + n.added
FROM (SELECT {_SIGNAL_KEY}, count(*) AS added FROM {{0}} GROUP BY {_SIGNAL_KEY}) AS n
WHERE {_SAME_SIGNAL.format("t", "n")}"""  # nosec B608
# PostgreSQL: the upsert returns each signal's first merchant as it now stands (rows this
# transaction holds locked until it ends), and the batch's other merchants wait in signal_extra;
# a merchant counts for the transaction that inserted it into signal_merchants (`new`), which
# leaves out one another process inserted first.
_PG_SIGNALS = f"""WITH {_kinds()}, totals AS (
    SELECT {_SIGNAL_KEY}, count(*) AS checks, array_to_string(
        (array_agg(check_id ORDER BY check_id COLLATE "C" DESC))[1:{EVIDENCE_IDS}], ' '
    ) AS evidence, {_PG_TIME.format("max(checked_at)")} AS last_checked_at,
        min(merchant_id) AS first_merchant
    FROM k GROUP BY {_SIGNAL_KEY}
), up AS (
    {_in_key_order(_UPSERT_SIGNALS, 3, ordered=True)}
    RETURNING {_SIGNAL_KEY}, first_merchant
)
{_INTO_EXTRA}
FROM k JOIN up ON {_SAME_SIGNAL.format("up", "k")}
WHERE k.merchant_id IS NOT NULL AND k.merchant_id <> up.first_merchant"""  # nosec B608
_PG_MERCHANTS = f"""WITH new AS (
    INSERT INTO signal_merchants ({_EXTRA_KEY})
    SELECT {_EXTRA_KEY} FROM signal_extra ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING {_SIGNAL_KEY}
)
{_ADD_MERCHANTS.format("new")}"""  # nosec B608
_PG_RECORDS = _insert_records("convert_from(certificate, 'UTF8')", _PG_TIME)
_PG_FOLD = ";\n".join(
    [_PG_RECORDS, _in_key_order(_PAIRS, 8, ordered=True), _PG_SIGNALS, _PG_MERCHANTS, _COUNTS]
)
# SQLite has one writer at a time, and this transaction is it since its first insert: the
# merchants neither first nor in signal_merchants are the ones this batch adds. A signal's
# totals come from a GROUP BY; its evidence, the 20 newest ids concatenated in that order (a
# plain group_concat's order is not defined), from a window over the checks of the signals
# checked more than once in the batch, held by the row of the newest; a signal checked once
# has that check's id. The window over every check cost 7.9 us a record of a verify's flush,
# this 4.2 (bench/README.md, seventeenth pass): most signals of a batch are checked once.
_SQLITE_SIGNALS = f"""WITH {_kinds()}, grouped AS MATERIALIZED (
    SELECT {_SIGNAL_KEY}, count(*) AS checks, max(check_id) AS newest,
        {_SQLITE_TIME.format("max(checked_at)")} AS last_checked_at,
        min(merchant_id) AS first_merchant
    FROM k GROUP BY {_SIGNAL_KEY}
), ranked AS (
    SELECT k.platform, k.cert_no, k.kind, row_number() OVER w AS n,
        group_concat(k.check_id, ' ') OVER (w ROWS BETWEEN CURRENT ROW AND {EVIDENCE_IDS - 1}
            FOLLOWING) AS evidence
    FROM k JOIN grouped AS g ON {_SAME_SIGNAL.format("g", "k")} AND g.checks > 1
    WINDOW w AS (PARTITION BY k.platform, k.cert_no, k.kind ORDER BY k.check_id DESC)
), totals AS (
    SELECT g.platform, g.cert_no, g.kind, g.checks, coalesce(r.evidence, g.newest) AS evidence,
        g.last_checked_at, g.first_merchant
    FROM grouped AS g LEFT JOIN ranked AS r ON {_SAME_SIGNAL.format("r", "g")} AND r.n = 1
)
{_in_key_order(_UPSERT_SIGNALS, 3, ordered=False)}"""  # nosec B608
# Only the checks that name a merchant: a verify's usually name none.
_SQLITE_EXTRA = f"""WITH {_kinds("cert_no IS NOT NULL AND merchant_id IS NOT NULL")}
{_INTO_EXTRA}
FROM k JOIN signal_counts AS c ON {_SAME_SIGNAL.format("c", "k")}
WHERE k.merchant_id <> c.first_merchant AND NOT EXISTS (
    SELECT 1 FROM signal_merchants AS m
    WHERE {_SAME_SIGNAL.format("m", "k")} AND m.merchant_id = k.merchant_id
)"""  # nosec B608
_SQLITE_MERCHANTS = [
    _ADD_MERCHANTS.format("signal_extra"),
    f"INSERT INTO signal_merchants ({_EXTRA_KEY}) SELECT {_EXTRA_KEY} FROM signal_extra",  # nosec B608
]
_SQLITE_RECORDS = _insert_records("CAST(certificate AS TEXT)", _SQLITE_TIME)
_SQLITE_FOLD = [
    _SQLITE_RECORDS,
    _in_key_order(_PAIRS, 8, ordered=False),
    _SQLITE_SIGNALS,
    _SQLITE_EXTRA,
    *_SQLITE_MERCHANTS,
    _COUNTS,
]
_EMPTY = ("DELETE FROM check_stage", "DELETE FROM signal_extra")  # SQLite: no ON COMMIT


def _forget_written(time: str) -> str:
    """The staged records already in check_records: a record's key is its check id and time
    (the primary key, which the partitions need)."""
    staged_time = time.format("check_stage.checked_at")
    return f"""DELETE FROM check_stage WHERE EXISTS (
    SELECT 1 FROM check_records AS r
    WHERE r.check_id = check_stage.check_id AND r.checked_at = {staged_time}
)"""  # nosec B608


async def write(
    conn: AsyncConnection, rows: list[tuple[Any, ...]], *, uncertain: bool = False
) -> None:
    """Insert staged rows made `ready` and fold them, on `conn` inside its transaction.
    `uncertain`: records already in check_records are left out, neither inserted nor counted
    again (an earlier write of these rows ended without telling whether it committed)."""
    if not rows:
        return
    driver = await bulk.driver(conn)
    create = bulk.per_dialect(_create, conn.dialect)
    postgres = conn.dialect.name == "postgresql"
    forget = (_forget_written(_PG_TIME if postgres else _SQLITE_TIME),) if uncertain else ()
    if postgres:
        await driver.execute(";\n".join(create))
        # asyncpg encodes a COPY's rows on the loop, all of a list in one go (~30 ms for
        # 10,000 records): one COPY a slice lets other requests run between them. An async
        # iterator of the rows did too, at 0.4-0.7 us more a row (one await each).
        for start in range(0, len(rows), _COPY_SLICE):
            await driver.copy_records_to_table(
                "check_stage", records=rows[start : start + _COPY_SLICE], columns=STAGE_COLUMNS
            )
        for sql in forget:
            await driver.execute(sql)
        await driver.execute(_PG_FOLD)  # no parameters: one round trip for the script
        return
    before, after = (*create, *_EMPTY), (*forget, *_SQLITE_FOLD, *_EMPTY)
    steps = [*((sql, ()) for sql in before), *rows, *((sql, ()) for sql in after)]
    await bulk.sqlite_steps(driver, steps)
