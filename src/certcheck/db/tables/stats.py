"""Statistics and misuse signals (docs/evidence.md; evidence/staged.py): figures folded in
with every batch of check records, so no request reads the records themselves."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, String, Table, Text

from certcheck.db.metadata import metadata
from certcheck.db.types import UTCDateTime, bytewise

# Statistics (evidence/staged.py), folded in with every batch of check records. Counters
# per China Standard Time day and key; the product code is '' when there is none.
check_counts = Table(
    "check_counts",
    metadata,
    Column("day", Date, primary_key=True),
    Column("platform", String(128), primary_key=True),
    Column("product_code", Text, primary_key=True),
    Column("source", String(8), primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("decision", String(8), primary_key=True),
    Column("checks", BigInteger, nullable=False),
)

# Which listings and merchants had a check on a day, under which keys: one row per distinct
# (listing, merchant) pair and combination, so distinct counts are exact over any range and
# grouping. `sides` says which the check named: 'L' (a listing), 'M' (a merchant) or 'B'
# (both); the other is ''. One row a pair, not one a listing and one a merchant: a job's line
# names both, and each row is a look-up in this key (bench/README.md, twenty-sixth pass). The
# text compares byte by byte on PostgreSQL, as the staged rows it is folded from do.
check_pairs = Table(
    "check_pairs",
    metadata,
    Column("day", Date, primary_key=True),
    Column("platform", bytewise(String(128)), primary_key=True),
    Column("listing", bytewise(Text()), primary_key=True),
    Column("merchant", bytewise(Text()), primary_key=True),
    Column("sides", String(1), primary_key=True),
    Column("product_code", bytewise(Text()), primary_key=True),
    Column("reason", bytewise(String(32)), primary_key=True),
    Column("source", bytewise(String(8)), primary_key=True),
)

# Misuse signals (evidence/signals.py): per platform, certificate number and kind, the checks,
# the distinct merchants and the newest check ids. The first merchant seen is kept in the row
# and signal_merchants holds the others: most numbers are claimed by one merchant, and a row
# and an index entry fewer for each of them was 25 % of what folding the signals cost
# PostgreSQL (bench/README.md, fourteenth pass).
signal_counts = Table(
    "signal_counts",
    metadata,
    Column("platform", String(128), primary_key=True),
    Column("cert_no", String(16), primary_key=True),
    Column("kind", String(24), primary_key=True),
    Column("checks", BigInteger, nullable=False),
    Column("merchants", BigInteger, nullable=False),
    Column("evidence", Text, nullable=False),  # check ids, newest first, space-separated, <= 20
    Column("last_checked_at", UTCDateTime, nullable=False),
    Column("first_merchant", Text),  # None until a check of the key names a merchant
)

# The merchants of a signal other than its first_merchant.
signal_merchants = Table(
    "signal_merchants",
    metadata,
    Column("platform", String(128), primary_key=True),
    Column("cert_no", String(16), primary_key=True),
    Column("kind", String(24), primary_key=True),
    Column("merchant_id", Text, primary_key=True),
)
