"""Listing watch (docs/watch.md; watch/): watched listings, their events, the processor's place,
and each platform's webhook with its delivery state."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, LargeBinary, String, Table, Text

from certcheck.db.metadata import metadata
from certcheck.db.types import BigIntId, UTCDateTime

# The listings a platform keeps live, each with the request fields needed to decide it again and
# its current decision. Indexed by the normalised number, so a registry change touches only the
# listings that carry it.
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
