"""The registry's tables: the certificates, its state, the change feed and every import/sync."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, Index, Integer, String, Table, Text

from certcheck.db.metadata import metadata
from certcheck.db.types import BigIntId, UTCDateTime

# The cached copy of the registry: one row per certificate, replaced by imports, patched by syncs.
certificates = Table(
    "certificates",
    metadata,
    Column("cert_no", String(16), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("holder", Text, nullable=False),
    Column("manufacturer", Text),
    Column("factory", Text),
    Column("product_code", String(4), nullable=False),
    Column("product_name", Text),
    Column("models", JSON, nullable=False),
    Column("issued_on", Date),
    Column("expires_on", Date),
    Column("status_changed_on", Date),
    Column("status_reason", Text),
    # A digest of every field above, so an import finds changed rows without comparing columns.
    Column("digest", String(32), nullable=False),
)

# A single row (id 1) once a registry is loaded. `generation` grows with every committed change,
# which is how every worker process learns that its cache is out of date.
registry_state = Table(
    "registry_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("refreshed_at", UTCDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("certificates", Integer, nullable=False),
    Column("by_status", JSON, nullable=False),
)

# The change feed behind GET /v1/changes; `id` is the cursor.
changes = Table(
    "changes",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("cert_no", String(16), nullable=False),
    Column("old_status", String(16)),
    Column("new_status", String(16)),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("generation", BigInteger, nullable=False),
)

# Every import and sync, successful or not: what GET /v1/registry reports as last_sync.
registry_runs = Table(
    "registry_runs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(16), nullable=False),
    Column("added", Integer, nullable=False, default=0),
    Column("changed", Integer, nullable=False, default=0),
    Column("removed", Integer, nullable=False, default=0),
    Column("rejected_rows", Integer, nullable=False, default=0),
    Column("error", Text),
)

Index(None, registry_runs.c.kind, registry_runs.c.id)
