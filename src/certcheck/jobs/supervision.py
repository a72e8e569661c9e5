"""Keeping the job workers' loops alive: a loop that fails is logged, counted and restarted.

A loop that fails is down until it has run cleanly again (`ran_cleanly`), so one that fails again
at once keeps counting as down while it waits out a pause that doubles each time (up to 30 s).
`not_running()` names the loops that are down; /readyz reports it, and the gauge
certcheck_job_workers_running shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from certcheck.errors import RegistryStale, RegistryUnavailable
from certcheck.observability.metrics import JOB_WORKER_CRASHES, JOB_WORKERS_RUNNING

log = logging.getLogger(__name__)

_MAX_PAUSE = 30.0

# What a loop waits out rather than fails on: the registry or the database being unusable.
REGISTRY_WAIT = (RegistryUnavailable, RegistryStale)
WAITING = (*REGISTRY_WAIT, SQLAlchemyError, OSError, TimeoutError)


def describe(exc: BaseException | None) -> str:
    """An error in a few words, for a log line or a failed job's reason."""
    if exc is None:
        return "unknown"
    return getattr(exc, "detail", None) or type(exc).__name__


class Supervisor:
    def __init__(self, base_pause: float) -> None:
        self._base_pause = base_pause
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._down: dict[str, str] = {}  # loop -> why it is not running
        self._crashes: dict[str, int] = {}  # loop -> failures since it last ran cleanly
        self._stopped = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    def start(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        self._tasks[name] = asyncio.create_task(self._supervise(name, loop))
        self._publish()

    def ran_cleanly(self, name: str) -> None:
        """Called by a loop after each round that raised nothing: it is up (again)."""
        self._crashes.pop(name, None)
        if self._down.pop(name, None) is not None:
            log.info("job worker %s runs again", name)
            self._publish()

    def not_running(self) -> str | None:
        """Why some of the loops are not running; None when all of them are (or none should)."""
        if self.stopping or not self._tasks:
            return None
        down = dict(self._down)
        for name, task in self._tasks.items():
            if task.done():  # cancelled from outside: nothing restarts it
                down[name] = "stopped"
        if not down:
            return None
        why = "; ".join(sorted(set(down.values())))
        return f"{len(down)} of {len(self._tasks)} job workers not running ({why})"

    def stop(self) -> list[asyncio.Task[None]]:
        """Tell the loops to end; the tasks to wait for."""
        self._stopped.set()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        JOB_WORKERS_RUNNING.set(0)
        return tasks

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        while not self.stopping:
            try:
                await loop()
            except Exception as exc:
                pause = self._crashed(name, exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._stopped.wait()

    def _crashed(self, name: str, exc: Exception) -> float:
        crashes = self._crashes.get(name, 0) + 1
        self._crashes[name] = crashes
        self._down[name] = type(exc).__name__  # /readyz shows it to anyone: no message
        self._publish()
        JOB_WORKER_CRASHES.labels(task="worker").inc()
        pause: float = min(_MAX_PAUSE, self._base_pause * 2.0**crashes)
        if crashes == 1:  # the traceback once; a failure that repeats gets one line each time
            log.exception("job worker %s failed; restarting it in %.1f s", name, pause)
        else:
            log.error(
                "job worker %s failed again (%d times in a row: %s); restarting it in %.1f s",
                name,
                crashes,
                type(exc).__name__,
                pause,
            )
        return pause

    def _publish(self) -> None:
        JOB_WORKERS_RUNNING.set(max(0, len(self._tasks) - len(self._down)))
