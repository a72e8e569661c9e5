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
