"""Settings, read from CERTCHECK_* environment variables (and an optional .env file)."""

from __future__ import annotations

import enum
from pathlib import Path

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthMode(enum.StrEnum):
    REQUIRED = "required"
    DISABLED = "disabled"


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./certcheck.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CERTCHECK_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    max_registry_age: int = Field(default=86_400, gt=0, description="seconds")
    upstream_url: str | None = None
    upstream_token: SecretStr | None = None
    sync_interval: int = Field(default=0, ge=0, description="seconds; 0 turns periodic sync off")
    batch_max_items: int = Field(default=10_000, ge=1, le=100_000)
    auth: AuthMode = AuthMode.REQUIRED

    catalogue_dir: Path | None = None
    cache_size: int = Field(default=200_000, ge=0, description="certificates kept per process")
    cache_ttl: float = Field(default=60.0, gt=0, description="seconds a cached answer may live")
    generation_poll_interval: float = Field(
        default=1.0, gt=0, le=2.0, description="seconds between registry generation checks"
    )
    key_cache_ttl: float = Field(default=5.0, ge=0, description="seconds a verified key is trusted")
    rate_limit: str | None = Field(
        default=None, description="per key and process, e.g. '500/second;20000/minute'; unset: none"
    )
    import_max_removed_share: float = Field(default=0.10, ge=0, le=1)
    import_max_error_share: float = Field(default=0.01, ge=0, le=1)
    db_timeout: float = Field(default=2.0, gt=0, description="seconds per registry query")
    shutdown_drain: float = Field(
        default=5.0, ge=0, description="seconds /readyz fails before the server stops on SIGTERM"
    )
    shutdown_timeout: int = Field(
        default=30, ge=1, description="seconds in-flight requests get to finish on shutdown"
    )

    @field_validator("rate_limit")
    @classmethod
    def _parse_rate_limit(cls, value: str | None) -> str | None:
        if value:
            parse_many(value)  # raises ValueError with the reason
        return value or None

    @model_validator(mode="after")
    def _refuse_unusable(self) -> Settings:
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "CERTCHECK_DATABASE_URL must be sqlite+aiosqlite://... or postgresql+asyncpg://..."
            )
        if self.sync_interval and not self.upstream_url:
            raise ValueError("CERTCHECK_SYNC_INTERVAL is set but CERTCHECK_UPSTREAM_URL is not")
        if self.upstream_url and not self.upstream_url.startswith(("https://", "http://")):
            raise ValueError("CERTCHECK_UPSTREAM_URL must be an http(s) URL")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
