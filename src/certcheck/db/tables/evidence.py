"""Evidence (docs/evidence.md; evidence/): check records and the keys that sign receipts."""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary, String, Table, Text

from certcheck.db.metadata import metadata
from certcheck.db.types import UTCDateTime

# One row per check, written in bulk off the request path. On PostgreSQL the table is
# partitioned by day of `checked_at` (the migration says so in DDL of its own;
# evidence/partitions.py makes the days), so the primary key must hold `checked_at` too.
check_records = Table(
    "check_records",
    metadata,
    Column("check_id", String(26), primary_key=True),
    Column("checked_at", UTCDateTime, primary_key=True),
    Column("platform", String(128), nullable=False),
    Column("source", String(8), nullable=False),
    Column("job_id", String(32)),
    Column("cert_no", String(16)),
    Column("product_code", Text),
    Column("model", Text),
    Column("manufacturer", Text),
    Column("listing_id", Text),
    Column("merchant_id", Text),
    Column("decision", String(8), nullable=False),
    Column("reasons", Text, nullable=False),  # space-separated, most severe first
    Column("certificate", Text),  # the certificate as it stood, as JSON text
    Column("registry_as_of", UTCDateTime, nullable=False),
)

# The receipts' Ed25519 keys. The newest `current_from` is the current key; the private key
# (the raw 32-byte seed) never leaves this table except to sign. Back it up with the database.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_key", LargeBinary, nullable=False),
    Column("public_x", String(64), nullable=False),
    Column("current_from", UTCDateTime, nullable=False),
)
