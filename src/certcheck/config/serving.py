"""The HTTP service: who may call it, how often, and how it stops."""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field, field_validator


class AuthMode(enum.StrEnum):
    REQUIRED = "required"
    DISABLED = "disabled"


class ServingSettings(BaseModel):
    auth: AuthMode = AuthMode.REQUIRED
    batch_max_items: int = Field(default=10_000, ge=1, le=100_000)
    # Keys (hardening): api/deps.py, keys.py.
    key_cache_ttl: float = Field(default=5.0, ge=0, description="seconds a verified key is trusted")
    key_stale_if_error: float = Field(
        default=300.0,
        ge=0,
        description="seconds a key the database confirmed stays trusted while it cannot be "
        "reached; 0: none",
    )
    rate_limit: str | None = Field(
        default=None, description="per key and process, e.g. '500/second;20000/minute'; unset: none"
    )
    lookup_rate_limit: str | None = Field(
        default="60/minute",
        description="the public /lookup pages, per client address and process; empty: none",
    )
    shutdown_drain: float = Field(
        default=5.0, ge=0, description="seconds /readyz fails before the server stops on SIGTERM"
    )
    shutdown_timeout: int = Field(
        default=30, ge=1, description="seconds in-flight requests get to finish on shutdown"
    )

    @field_validator("rate_limit", "lookup_rate_limit")
    @classmethod
    def _parse_rate_limit(cls, value: str | None) -> str | None:
        if value:
            # Here, not at the top: every command loads the settings, few set a rate limit.
            from limits import parse_many

            parse_many(value)  # raises ValueError with the reason
        return value or None
