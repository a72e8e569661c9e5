"""Fixtures of the listing watch tests: an app without its own processor (the tests run rounds
themselves) and keys of two platforms."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.keys import Scope
from tests.conftest import FUNCTIONAL_DB_TIMEOUT, make_key


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        max_registry_age=3600,
        job_chunk_lines=3,
        watch_processor=False,
        db_timeout=FUNCTIONAL_DB_TIMEOUT,
    )


@pytest.fixture
async def shop(engine: AsyncEngine) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key(engine, Scope.BATCH, platform='shop')}"}


@pytest.fixture
async def other(engine: AsyncEngine) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key(engine, Scope.BATCH, platform='other')}"}
