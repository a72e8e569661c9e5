"""Where the registry and everything else is stored, and how long a query may take."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./certcheck.db"


class DatabaseSettings(BaseModel):
    database_url: str = DEFAULT_DATABASE_URL
    db_timeout: float = Field(default=2.0, gt=0)  # documented in docs/settings_table.py

    @model_validator(mode="after")
    def _refuse_unusable_database(self) -> Self:
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "CERTCHECK_DATABASE_URL must be sqlite+aiosqlite://... or postgresql+asyncpg://..."
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
