"""What real-time checks read: the registry's freshness, the catalogue and the caches."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class RegistrySettings(BaseModel):
    max_registry_age: int = Field(default=86_400, gt=0, description="seconds")
    catalogue_dir: Path | None = None
    cache_size: int = Field(default=200_000, ge=0, description="certificates kept per process")
    cache_ttl: float = Field(default=60.0, gt=0, description="seconds a cached answer may live")
    generation_poll_interval: float = Field(
        default=1.0, gt=0, le=2.0, description="seconds between registry generation checks"
    )
