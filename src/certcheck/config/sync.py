"""Upstream sync (registry-format.md section 2; sync/): the feed, its timeouts and retries."""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator


class SyncSettings(BaseModel):
    upstream_url: str | None = None
    upstream_token: SecretStr | None = None
    sync_interval: int = Field(default=0, ge=0, description="seconds; 0 turns periodic sync off")
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

    @model_validator(mode="after")
    def _refuse_unusable_sync(self) -> Self:
        if self.sync_interval and not self.upstream_url:
            raise ValueError("CERTCHECK_SYNC_INTERVAL is set but CERTCHECK_UPSTREAM_URL is not")
        if self.upstream_url:
            _check_upstream(self.upstream_url, has_token=self.upstream_token is not None)
        if self.sync_page_timeout > self.sync_run_timeout:
            raise ValueError("CERTCHECK_SYNC_PAGE_TIMEOUT exceeds CERTCHECK_SYNC_RUN_TIMEOUT")
        if self.sync_backoff_base > self.sync_backoff_max:
            raise ValueError("CERTCHECK_SYNC_BACKOFF_BASE exceeds CERTCHECK_SYNC_BACKOFF_MAX")
        return self


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _check_upstream(url: str, *, has_token: bool) -> None:
    """The URL names the feed and nothing else: credentials go in CERTCHECK_UPSTREAM_TOKEN."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("CERTCHECK_UPSTREAM_URL must be an http(s) URL")
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
