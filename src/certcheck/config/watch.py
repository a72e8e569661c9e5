"""Listing watch (docs/watch.md; watch/): the processor and how long events are kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class WatchSettings(BaseModel):
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
    watch_hold_file: Path | None = Field(
        default=None,
        description="test/diagnostic hook: while this file exists, a watch round that has done "
        "its work waits before it commits; unset in production",
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
