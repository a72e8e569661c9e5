"""Evidence (docs/evidence.md; evidence/): check records, their buffer and retention."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EvidenceSettings(BaseModel):
    check_records: bool = Field(
        default=True,
        description="on or off: record every check (off only to measure what records cost)",
    )
    # A quarter of a second: a flush's rows are made in a worker thread that takes turns with
    # the event loop at the GIL, so smaller, more frequent flushes keep the open-loop tail
    # short (p99 at a steady 3,000 verifies a second: 23-55 ms flushing every second, 11-14 ms
    # every quarter), and a crash loses less.
    check_flush_seconds: float = Field(
        default=0.25,
        gt=0,
        le=2.0,
        description="most seconds between two bulk writes of check records (5,000 waiting "
        "are written at once): with the write under way, at most what a crash loses; above 2 "
        "refused",
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
