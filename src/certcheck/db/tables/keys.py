"""API keys (keys.py)."""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table

from certcheck.db.metadata import metadata
from certcheck.db.types import UTCDateTime

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

Index(None, api_keys.c.platform)
