"""PostgreSQL: a batch of check records COPYed into the session's staging table, from which one
script inserts them and folds what they add into the statistics and signals.

Why the database counts: made in Python, a record's figures (its counters, memberships, signal
keys, evidence and merchants, then their rows encoded for the driver) cost the serving process
~10 µs a record beside the ~5 µs of the row itself, on the core that answers requests. The
server has the rows anyway; grouping them is work for its own core. SQLite keeps the Python
tally (tally.py, aggregates.py): there the database runs inside this process. Both must
count alike; tests/evidence/test_stats_store.py holds each to a count over the records.

The staging table is temporary (one per connection, created by the first batch a connection
writes, in that batch's transaction) and emptied at every commit, so a failed batch leaves
nothing behind. Every insert is in primary-key order: two processes folding at once lock the
same rows in the same order and cannot deadlock; the counters, which every writer updates,
come last, so they are held for the shortest time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from certcheck.evidence.records import COLUMNS
from certcheck.evidence.tally import EVIDENCE_CHARS, EVIDENCE_IDS, MISMATCHES, SignalKind

# Each staged row: the record's columns and the product code its statistics count it under
# (the certificate's, else the listing's claim as decide() reads it: tally.product_code_of).
STAGE_COLUMNS = (*COLUMNS, "code")
_COPY_SLICE = 500  # COPY rows encoded between two turns of the event loop

_CREATE = (
    "CREATE TEMP TABLE IF NOT EXISTS check_stage "
    "(LIKE check_records, code text NOT NULL) ON COMMIT DELETE ROWS"
)
# The statistics' day is China Standard Time's (verification/numbers.py: today_in_shanghai);
# the answer's `reason` the first (most severe) of the record's reasons.
_KEYED = (
    "SELECT *, (checked_at AT TIME ZONE 'Asia/Shanghai')::date AS day, "
    "split_part(reasons, ' ', 1) AS reason FROM check_stage"
)
_MISMATCH_ROWS = ", ".join(
    f"('{reason.value}', '{kind.value}')" for reason, kind in MISMATCHES.items()
)
_RECORDS = ", ".join(COLUMNS)
# Names and constants from this module only: nothing in the script comes from a request.
_FOLD = f"""
INSERT INTO check_records ({_RECORDS}) SELECT {_RECORDS} FROM check_stage;

INSERT INTO check_members (day, platform, kind, member, product_code, reason, source)
SELECT DISTINCT s.day, s.platform, m.kind, m.member, s.code, s.reason, s.source
FROM ({_KEYED}) AS s
CROSS JOIN LATERAL (VALUES ('L', s.listing_id), ('M', s.merchant_id)) AS m(kind, member)
WHERE m.member IS NOT NULL
ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT DO NOTHING;

WITH k AS (
    SELECT platform, cert_no, '{SignalKind.MANY_MERCHANTS.value}' AS kind, check_id, checked_at,
        merchant_id
    FROM check_stage WHERE cert_no IS NOT NULL
    UNION ALL
    SELECT s.platform, s.cert_no, m.kind, s.check_id, s.checked_at, s.merchant_id
    FROM check_stage AS s
    CROSS JOIN LATERAL unnest(string_to_array(s.reasons, ' ')) AS r(reason)
    JOIN (VALUES {_MISMATCH_ROWS}) AS m(reason, kind) ON m.reason = r.reason
    WHERE s.cert_no IS NOT NULL
), u AS (
    SELECT platform, cert_no, kind, count(*) AS checks,
        array_to_string(
            (array_agg(check_id ORDER BY check_id COLLATE "C" DESC))[1:{EVIDENCE_IDS}], ' '
        ) AS evidence,
        max(checked_at) AS last_checked_at
    FROM k GROUP BY platform, cert_no, kind
), new AS (
    INSERT INTO signal_merchants (platform, cert_no, kind, merchant_id)
    SELECT DISTINCT platform, cert_no, kind, merchant_id FROM k WHERE merchant_id IS NOT NULL
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING platform, cert_no, kind
), gained AS (
    SELECT platform, cert_no, kind, count(*) AS merchants FROM new
    GROUP BY platform, cert_no, kind
)
INSERT INTO signal_counts AS t
    (platform, cert_no, kind, checks, merchants, evidence, last_checked_at)
SELECT u.platform, u.cert_no, u.kind, u.checks, coalesce(g.merchants, 0), u.evidence,
    u.last_checked_at
FROM u LEFT JOIN gained AS g USING (platform, cert_no, kind)
ORDER BY 1, 2, 3
ON CONFLICT (platform, cert_no, kind) DO UPDATE SET
    checks = t.checks + excluded.checks,
    merchants = t.merchants + excluded.merchants,
    evidence = substr(excluded.evidence || ' ' || t.evidence, 1, {EVIDENCE_CHARS}),
    last_checked_at = greatest(t.last_checked_at, excluded.last_checked_at);

INSERT INTO check_counts AS t (day, platform, product_code, source, reason, decision, checks)
SELECT day, platform, code, source, reason, decision, count(*)
FROM ({_KEYED}) AS s
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (day, platform, product_code, source, reason, decision)
DO UPDATE SET checks = t.checks + excluded.checks
"""
# A batch's ids come before the older ones in `evidence`; ids are of one width, so cutting
# at 20 ids' worth of characters keeps whole ids. A merchant counts for the transaction that
# inserted it: `new` leaves out one another process inserted first.


async def write(driver: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert staged `rows` (STAGE_COLUMNS order) and fold them, on asyncpg connection `driver`
    inside its transaction."""
    await driver.execute(_CREATE)
    await driver.copy_records_to_table("check_stage", records=_sliced(rows), columns=STAGE_COLUMNS)
    await driver.execute(_FOLD)  # no parameters: one round trip for all four statements


async def _sliced(rows: Sequence[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
    """`rows`, letting the event loop run between slices: asyncpg encodes COPY's rows on the
    loop and, given a list, all of them in one go (~30 ms for 10,000 records)."""
    for start in range(0, len(rows), _COPY_SLICE):
        for row in rows[start : start + _COPY_SLICE]:
            yield row
        await asyncio.sleep(0)
