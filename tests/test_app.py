"""The application's lifespan: a startup step that fails undoes the steps before it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.pool import Pool

from certcheck.app import create_app
from certcheck.config import Settings
from certcheck.verification.catalogue import CatalogueError


class Connections:
    """Database connections opened and closed by any engine while it is listening."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    def _open(self, *_args: Any) -> None:
        self.opened += 1

    def _close(self, *_args: Any) -> None:
        self.closed += 1

    @property
    def open(self) -> int:
        return self.opened - self.closed


@pytest.fixture
def connections() -> Iterator[Connections]:
    seen = Connections()
    event.listen(Pool, "connect", seen._open)
    event.listen(Pool, "close", seen._close)
    yield seen
    event.remove(Pool, "connect", seen._open)
    event.remove(Pool, "close", seen._close)


class TestLifespan:
    async def test_a_failed_startup_leaves_no_task_and_no_connection(
        self, settings: Settings, tmp_path: Path, connections: Connections
    ) -> None:
        broken = settings.model_copy(update={"catalogue_dir": tmp_path / "no-such-catalogue"})
        before = asyncio.all_tasks()
        with pytest.raises((CatalogueError, OSError)):
            async with LifespanManager(create_app(broken)):
                pass
        assert connections.opened >= 1  # the first registry read ran before the failure
        assert connections.open == 0  # the engine was disposed
        assert asyncio.all_tasks() - before == set()  # the registry poll did not outlive it

    async def test_a_clean_shutdown_leaves_no_task(self, settings: Settings) -> None:
        before = asyncio.all_tasks()
        async with LifespanManager(create_app(settings)):
            assert len(asyncio.all_tasks() - before) >= 4  # poll, housekeeping, two workers
        assert asyncio.all_tasks() - before == set()
