"""Settings, read from CERTCHECK_* environment variables (and an optional .env file)."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthMode(enum.StrEnum):
    REQUIRED = "required"
    DISABLED = "disabled"


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./certcheck.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CERTCHECK_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # A validation error must not print the settings it was given: the token is among them.
        hide_input_in_errors=True,
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
    lookup_rate_limit: str | None = Field(
        default="60/minute",
        description="the public /lookup pages, per client address and process; empty: none",
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
    # Upstream sync (registry-format.md section 2; sync/syncer.py).
    sync_page_size: int = Field(default=1_000, ge=1, le=5_000, description="items per feed page")
    sync_connect_timeout: float = Field(default=5.0, gt=0, description="seconds to connect")
    sync_read_timeout: float = Field(
        default=30.0, gt=0, description="seconds to wait for the next bytes of an answer"
    )
    sync_page_timeout: float = Field(
        default=60.0, gt=0, description="seconds one page request may take in all, body included"
    )
    sync_run_timeout: float = Field(
        default=600.0, gt=0, description="seconds one run may spend on requests and retries"
    )
    sync_max_pages: int = Field(default=1_000, ge=1, description="pages one run may apply")
    sync_max_response_bytes: int = Field(default=16 << 20, ge=1_024, description="per page")
    sync_max_attempts: int = Field(default=5, ge=1, le=20, description="tries of one page")
    sync_backoff_base: float = Field(default=0.5, gt=0, description="seconds, doubled per retry")
    sync_backoff_max: float = Field(default=30.0, gt=0, description="seconds between two tries")
    sync_retry_after_max: float = Field(
        default=60.0, ge=0, description="seconds of an upstream Retry-After honoured at most"
    )
    sync_max_bad_share: float = Field(
        default=0.01, ge=0, le=1, description="share of unreadable items a page may have"
    )
    sync_overlap: float = Field(
        default=10.0, ge=0, description="seconds before the cursor asked for again (late commits)"
    )
    # Re-check jobs (api.md "Re-check jobs"; jobs/).
    job_workers: int = Field(
        default=2, ge=0, le=64, description="job worker tasks per serve process; 0: API only"
    )
    job_chunk_lines: int = Field(default=5_000, ge=1, le=50_000, description="lines per chunk")
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="seconds a chunk stays with a worker that went silent"
    )
    job_poll_interval: float = Field(default=1.0, gt=0, le=60, description="idle workers' poll")
    job_max_attempts: int = Field(default=5, ge=1, description="leases of one chunk before failing")
    job_max_upload_bytes: int = Field(default=1 << 30, ge=1, description="bytes as sent")
    job_max_content_bytes: int = Field(default=4 << 30, ge=1, description="bytes after gunzip")
    job_max_lines: int = Field(default=10_000_000, ge=1)
    job_max_line_bytes: int = Field(default=65_536, ge=1_024)
    job_max_unfinished: int = Field(
        default=4, ge=1, description="queued or running jobs per platform"
    )
    job_retention: int = Field(
        default=7 * 86_400, ge=0, description="seconds finished jobs are kept; 0: for ever"
    )
    job_spool_dir: Path | None = Field(default=None, description="uploads' temporary files")
    # Keys (hardening): api/deps.py, keys.py.
    key_stale_if_error: float = Field(
        default=300.0,
        ge=0,
        description="seconds a key the database confirmed stays trusted while it cannot be "
        "reached; 0: none",
    )
    # Request limits (hardening): api/limits.py, api/strict_json.py, http_protocol.py.
    max_body_bytes: int = Field(
        default=16 << 20, ge=1_024, description="bytes of a JSON body (a full batch fits)"
    )
    verify_max_body_bytes: int = Field(
        default=64 << 10, ge=1_024, description="bytes of a POST /v1/verify body"
    )
    max_in_flight: int = Field(
        default_factory=lambda: max(64, 32 * (os.cpu_count() or 1)),
        ge=1,
        description="requests one process works on at once (default 32 per CPU, at least 64); "
        "more get 503 OVERLOADED",
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds a request's line and headers may take to arrive"
    )
    max_header_bytes: int = Field(
        default=32 << 10, ge=1_024, description="bytes of a request's line and headers"
    )
    body_timeout: float = Field(
        default=10.0, gt=0, description="seconds of grace before body_min_rate is enforced"
    )
    body_min_rate: int = Field(
        default=8 << 10, ge=1, description="bytes per second a request body must average"
    )
    # Intake limits (hardening): what one upload may cost before it is refused.
    # A legitimate file has a handful of blank lines (a spreadsheet's trailing rows); a flood of
    # them costs a scan per line and counts nowhere else, so it is capped on its own.
    job_max_blank_lines: int = Field(
        default=100_000, ge=0, description="blank lines a re-check upload may hold"
    )
    # The national registry is a few million rows, well under 1 GiB as CSV: twice that is room.
    import_max_upload_bytes: int = Field(
        default=2 << 30, ge=1, description="bytes of a snapshot upload as sent"
    )
    # Gunzipped as it arrives and spooled, like a re-check upload: a gzip bomb stops here.
    import_max_content_bytes: int = Field(
        default=4 << 30, ge=1, description="bytes of a snapshot upload after gunzip"
    )
    # The longest valid row (2000 models of 256 characters) is about 520,000 characters.
    import_max_line_chars: int = Field(
        default=4 << 20, ge=1_024, description="characters of one snapshot line"
    )
    import_max_blank_lines: int = Field(
        default=100_000, ge=0, description="blank lines a snapshot may hold"
    )
    # A full national snapshot imports in a few minutes; half an hour means something is wrong,
    # and the writer lock it holds keeps every sync out meanwhile.
    import_timeout: float = Field(
        default=1_800.0, gt=0, description="seconds a snapshot upload's import may take in all"
    )
    # Job workers (hardening).
    job_hold_file: Path | None = Field(
        default=None,
        description="test/diagnostic hook: while this file exists, workers hold their leased "
        "chunks instead of committing them; unset in production",
    )

    # Listing watch (docs/watch.md; watch/).
    watch_processor: bool = Field(
        default=True, description="run the watch processor in each serve process"
    )
    watch_poll_interval: float = Field(
        default=2.0, gt=0, le=5, description="seconds between the watch processor's looks for work"
    )
    watch_feed_batch: int = Field(
        default=1_000, ge=1, le=10_000, description="change entries one watch round decides again"
    )
    watch_event_retention_days: int = Field(
        default=30, ge=1, description="days watch events are kept"
    )
    # Webhooks of the listing watch (docs/watch.md "Webhooks"; watch/delivery.py).
    webhook_allow_private: bool = Field(
        default=False,
        description="accept http:// and loopback or private webhook addresses (local trials "
        "and tests only: it lets a platform make this service call inside your network)",
    )
    webhook_retry_hours: float = Field(
        default=24.0, gt=0, description="hours an event is retried before it is dead-lettered"
    )
    webhook_backoff_base: float = Field(
        default=10.0,
        gt=0,
        le=30,
        description="seconds; the first retry comes within it, each next within twice as long "
        "(full jitter, at most an hour)",
    )
    webhook_deliveries: int = Field(
        default=8,
        ge=0,
        le=256,
        description="webhook deliveries in flight at once per serve process, one per platform; "
        "0: this process delivers none",
    )
    webhook_poll_interval: float = Field(
        default=1.0, gt=0, le=10, description="seconds between looks for events to deliver"
    )

    # Evidence (docs/evidence.md): check records and signed receipts; evidence/.
    check_records: bool = Field(
        default=True,
        description="on or off: record every check (off only to measure what records cost)",
    )
    check_flush_seconds: float = Field(
        default=1.0,
        gt=0,
        le=2.0,
        description="seconds between two bulk writes of check records: at most what a crash "
        "loses; above 2 refused",
    )
    check_buffer_size: int = Field(
        default=100_000, ge=1, description="check records one process holds before writing"
    )
    check_buffer_full: Literal["shed", "wait"] = Field(
        default="shed",
        description="when the record buffer is full: shed (drop records, counted and logged) "
        "or wait (the answer waits for room)",
    )
    check_retention_days: int = Field(
        default=400, ge=1, description="days check records (and their signing keys) are kept"
    )

    @field_validator("rate_limit", "lookup_rate_limit")
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

    @model_validator(mode="after")
    def _refuse_unusable_imports(self) -> Settings:
        if self.import_max_upload_bytes > self.import_max_content_bytes:
            # As for jobs: an upload sent without gzip is as long as its content.
            raise ValueError(
                "CERTCHECK_IMPORT_MAX_UPLOAD_BYTES exceeds CERTCHECK_IMPORT_MAX_CONTENT_BYTES"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unusable_jobs(self) -> Settings:
        if self.job_max_line_bytes > self.job_max_content_bytes:
            raise ValueError("CERTCHECK_JOB_MAX_LINE_BYTES exceeds CERTCHECK_JOB_MAX_CONTENT_BYTES")
        if self.job_max_upload_bytes > self.job_max_content_bytes:
            # An upload sent without gzip is as long as its content: it would pass one cap only.
            raise ValueError(
                "CERTCHECK_JOB_MAX_UPLOAD_BYTES exceeds CERTCHECK_JOB_MAX_CONTENT_BYTES"
            )
        if self.job_spool_dir is not None and not self.job_spool_dir.is_dir():
            raise ValueError(f"CERTCHECK_JOB_SPOOL_DIR {self.job_spool_dir} is not a directory")
        return self

    @model_validator(mode="after")
    def _refuse_unusable_sync(self) -> Settings:
        if self.upstream_url:
            _check_upstream(self.upstream_url, has_token=self.upstream_token is not None)
        if self.sync_page_timeout > self.sync_run_timeout:
            raise ValueError("CERTCHECK_SYNC_PAGE_TIMEOUT exceeds CERTCHECK_SYNC_RUN_TIMEOUT")
        if self.sync_backoff_base > self.sync_backoff_max:
            raise ValueError("CERTCHECK_SYNC_BACKOFF_BASE exceeds CERTCHECK_SYNC_BACKOFF_MAX")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _check_upstream(url: str, *, has_token: bool) -> None:
    """The URL names the feed and nothing else: credentials go in CERTCHECK_UPSTREAM_TOKEN."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("CERTCHECK_UPSTREAM_URL must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError(
            "CERTCHECK_UPSTREAM_URL must carry no user, password, query or fragment; "
            "put the token in CERTCHECK_UPSTREAM_TOKEN"
        )
    if has_token and parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError("CERTCHECK_UPSTREAM_TOKEN would travel in clear text: use https://")
