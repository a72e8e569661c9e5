"""The evidence parts one serve process holds: its record buffer, the reader and the signer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.evidence.buffer import CheckRecorder, WhenFull, running
from certcheck.evidence.signing import SigningKeys
from certcheck.evidence.store import RecordReader


@dataclass(frozen=True, slots=True)
class Evidence:
    recorder: CheckRecorder
    records: RecordReader
    signing: SigningKeys


@contextlib.asynccontextmanager
async def evidence(
    settings: Settings, engine: AsyncEngine, realtime: AsyncEngine
) -> AsyncIterator[Evidence]:
    """Records are written on the bulk engine; single look-ups use the real-time one."""
    recorder = CheckRecorder(
        engine,
        capacity=settings.check_buffer_size,
        when_full=WhenFull(settings.check_buffer_full),
        enabled=settings.check_records,
    )
    async with running(recorder, settings.check_flush_seconds):
        yield Evidence(
            recorder=recorder,
            records=RecordReader(realtime, settings.check_retention_days),
            signing=SigningKeys(realtime, retention_days=settings.check_retention_days),
        )
