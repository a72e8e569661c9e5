"""Upstream sync's own table: where the feed was read up to."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table

from certcheck.db.metadata import metadata
from certcheck.db.types import UTCDateTime

# The upstream feed's cursor (registry-format.md §2): the newest `updated_at` applied so far.
sync_state = Table(
    "sync_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("cursor", String(64)),
    Column("as_of", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)
