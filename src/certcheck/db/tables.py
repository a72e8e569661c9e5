"""The tables, on one MetaData whose naming convention gives both databases the same names."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from certcheck.db.types import BigIntId, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

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

# Keys are stored as SHA-256 digests of their secret; `id` is the public part of the key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("platform", String(128), nullable=False),
    Column("scopes", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

Index(None, registry_runs.c.kind, registry_runs.c.id)
Index(None, api_keys.c.platform)

# The upstream feed's cursor (registry-format.md §2): the newest `updated_at` applied so far.
sync_state = Table(
    "sync_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("cursor", String(64)),
    Column("as_of", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Re-check jobs (api.md): one row per upload; the counters move with every chunk's commit.
recheck_jobs = Table(
    "recheck_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("platform", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("format", String(8), nullable=False),
    Column("total", Integer, nullable=False, default=0),
    Column("processed", Integer, nullable=False, default=0),
    Column("allow_count", Integer, nullable=False, default=0),
    Column("block_count", Integer, nullable=False, default=0),
    Column("review_count", Integer, nullable=False, default=0),
    Column("invalid_lines", Integer, nullable=False, default=0),
    Column("idempotency_key", String(256)),
    Column("body_digest", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("registry_generation", BigInteger),
    Column("registry_as_of", UTCDateTime),
    Column("error", Text),
    UniqueConstraint("platform", "idempotency_key"),
)

# The work queue: one row per chunk of a job's lines not yet answered, leased by one worker at a
# time; `id` orders the queue (oldest job first). A chunk's row goes when its results commit.
recheck_chunks = Table(
    "recheck_chunks",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("recheck_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("state", String(8), nullable=False),
    Column("leased_by", String(64)),
    Column("lease_until", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    UniqueConstraint("job_id", "chunk"),
)

# A chunk's input lines (jobs/chunks.py): zlib-compressed JSON objects, one per line, with the
# upload's line numbers and the lines that could not be read. Deleted with the chunk's row.
recheck_inputs = Table(
    "recheck_inputs",
    metadata,
    Column(
        "job_id", String(32), ForeignKey("recheck_jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("chunk", Integer, primary_key=True),
    Column("line_runs", Text, nullable=False),
    Column("records", LargeBinary, nullable=False),
    Column("errors", Text),
)

# A chunk's answers: zlib-compressed NDJSON result lines and one letter per line (a, b, r) for
# the decision, so ?decision= filters without parsing JSON.
recheck_results = Table(
    "recheck_results",
    metadata,
    Column(
        "job_id", String(32), ForeignKey("recheck_jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("chunk", Integer, primary_key=True),
    Column("decisions", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

Index(None, recheck_jobs.c.platform, recheck_jobs.c.status)
Index(None, recheck_chunks.c.state, recheck_chunks.c.id)

# Listing watch (docs/watch.md): the listings a platform keeps live, each with the request fields
# needed to decide it again and its current decision. Indexed by the normalised number, so a
# registry change touches only the listings that carry it.
watched_listings = Table(
    "watched_listings",
    metadata,
    Column("platform", String(128), primary_key=True),
    Column("listing_id", String(256), primary_key=True),
    Column("cert_no", String(16)),  # normalised; null when what was sent is malformed
    Column("cert_no_sent", String(64), nullable=False),
    Column("product_code", String(256)),
    Column("model", String(256)),
    Column("manufacturer", String(256)),
    Column("merchant_id", String(256)),
    Column("decision", String(8), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("since", UTCDateTime, nullable=False),  # when the listing got its current decision
    Column("check_id", String(26), nullable=False),  # the check behind the current decision
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per decision change of a watched listing; `seq` orders a platform's events (the
# cursor of GET /v1/watch/events). Never reused on SQLite either: purged rows leave a gap.
watch_events = Table(
    "watch_events",
    metadata,
    Column("seq", BigIntId, primary_key=True, autoincrement=True),
    Column("event_id", String(26), nullable=False, unique=True),
    Column("platform", String(128), nullable=False),
    Column("listing_id", String(256), nullable=False),
    Column("cert_no", String(16)),
    Column("old_decision", String(8), nullable=False),
    Column("new_decision", String(8), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("check_id", String(26), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

# The watch processor's position: the last change-feed id decided again and the Shanghai day
# of the last expiry pass. Locked by whoever works (processor) or upserts (listings), and moved
# in the same transaction as the events and listings it covers.
watch_cursors = Table(
    "watch_cursors",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("change_id", BigInteger, nullable=False),
    Column("expiry_day", Date, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# A platform's webhook (docs/watch.md "Webhooks") and its delivery state: every event of the
# platform up to `delivered_seq` is acknowledged or dead-lettered; the next one is due at
# `next_attempt_at`. A delivery worker claims the row (`claimed_by` until `claimed_until`)
# before it sends, so two processes never send the same event.
watch_webhooks = Table(
    "watch_webhooks",
    metadata,
    Column("platform", String(128), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", LargeBinary, nullable=False),  # the HMAC key: needed in clear to sign
    Column("registered_at", UTCDateTime, nullable=False),
    Column("delivered_seq", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),  # failed attempts of the next event
    Column("failing_since", UTCDateTime),  # the next event's first failed attempt
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(32)),
    Column("claimed_until", UTCDateTime),
    Column("dead_lettered", BigInteger, nullable=False),
)

Index(None, watched_listings.c.cert_no)
Index(None, watch_events.c.platform, watch_events.c.seq)
Index(None, watch_events.c.created_at)

# Evidence (docs/evidence.md): one row per check, written in bulk off the request path. On
# PostgreSQL the table is partitioned by day of `checked_at` (the migration says so in DDL of its
# own; evidence/partitions.py makes the days), so the primary key must hold `checked_at` too.
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
