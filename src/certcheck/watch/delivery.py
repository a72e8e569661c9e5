"""The webhook delivery worker inside a `serve` process: POSTs each platform's events, signed
as Standard Webhooks says, in order, to the platform's URL (docs/watch.md "Webhooks").

One task looks for platforms with an event due and starts a task per platform, at most
`slots` at once: a receiver that is slow or down holds one slot for one attempt (10 s at most)
and then waits out its backoff in the database, not here, so it never delays another
platform. A platform's task claims it through the database (watch/outbox.py), sends its
events one after another while they are acknowledged, and stops at the first failure.
Deliveries use the bulk pool and an HTTP client of their own, never the real-time pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from ulid import ULID

from certcheck.config import Settings
from certcheck.errors import WebhookUrlRefused
from certcheck.observability.metrics import (
    JOB_WORKER_CRASHES,
    WEBHOOK_DEAD_LETTERS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_DELIVERY_LAG,
    WEBHOOK_OLDEST_PENDING,
    WEBHOOKS_FAILING,
    WEBHOOKS_PENDING,
)
from certcheck.watch import addresses, outbox
from certcheck.watch.records import StoredWatchEvent
from certcheck.watch.signing import payload, signed_headers

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one attempt, connecting and answering included
_LEASE = timedelta(seconds=60)  # well over one attempt: a live holder renews it in time
_READ_AT_MOST = 64 * 1024  # bytes of an answer read (to keep the connection); the rest is dropped
_HOUSEKEEPING_EVERY = 15.0
_STOP_GRACE = 2.0
_MAX_BACKOFF = 30.0
_WAITING = (SQLAlchemyError, OSError, TimeoutError)


class Outcome(enum.StrEnum):
    ACKNOWLEDGED = "acknowledged"  # any 2xx
    REJECTED = "rejected"  # any other status, a redirect included: redirects are not followed
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"  # no connection, TLS failed, connection dropped
    REFUSED_ADDRESS = "refused_address"  # the name no longer resolves to an allowed address


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    slots: int  # platforms delivered to at once; 0: none in this process
    poll_interval: float
    allow_private: bool
    retry: outbox.RetryPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            slots=settings.webhook_deliveries,
            poll_interval=settings.webhook_poll_interval,
            allow_private=settings.webhook_allow_private,
            retry=outbox.RetryPolicy(
                period=timedelta(hours=settings.webhook_retry_hours),
                base=settings.webhook_backoff_base,
            ),
        )


class WebhookDelivery:
    def __init__(self, engine: AsyncEngine, config: DeliveryConfig) -> None:
        self._engine, self._config = engine, config
        # One TLS context for every client, made at the first delivery: loading the CA
        # certificates costs ~25 ms, which a process that never delivers need not spend.
        self._tls: ssl.SSLContext | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._housekept = -_HOUSEKEEPING_EVERY

    def start(self) -> None:
        if self._config.slots:
            self._task = asyncio.create_task(self._run(), name="webhook delivery")

    async def stop(self) -> None:
        """Deliveries in flight get a moment; one cut short is sent again later (the receiver
        dedupes by webhook-id), its claim expiring after the lease."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:  # first the loop, so that it starts nothing more
            await _finish([self._task])
        await _finish(list(self._running.values()))

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            pause = self._config.poll_interval
            try:
                await self._launch()
                await self._housekeep()
                failures = 0
            except _WAITING as exc:
                failures += 1
                pause = min(_MAX_BACKOFF, pause * 2**failures)
                log.warning("webhook delivery waits %.0f s: %s", pause, type(exc).__name__)
            except Exception:
                failures += 1
                pause = min(_MAX_BACKOFF, pause * 2**failures)
                JOB_WORKER_CRASHES.labels(task="webhooks").inc()
                log.exception("webhook delivery round failed; again in %.0f s", pause)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()
            self._wake.clear()

    async def _launch(self) -> None:
        free = self._config.slots - len(self._running)
        if free <= 0:
            return
        now = datetime.now(UTC)
        platforms = await outbox.due(self._engine, now, skip=set(self._running), limit=free)
        for platform in platforms if not self._stopping else ():
            task = asyncio.create_task(self._deliver(platform), name=f"webhook {platform}")
            self._running[platform] = task
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        platform = next(p for p, t in self._running.items() if t is task)
        del self._running[platform]
        if not task.cancelled() and (exc := task.exception()) is not None:
            JOB_WORKER_CRASHES.labels(task="webhooks").inc()
            log.error("webhook delivery to %s failed", platform, exc_info=exc)
        self._wake.set()  # a slot is free, and the platform may have more due

    async def _deliver(self, platform: str) -> None:
        """Claim the platform, send its events while they are acknowledged, give it back."""
        token = str(ULID())
        claim = await outbox.claim(self._engine, platform, token, datetime.now(UTC), _LEASE)
        if claim is None:
            return  # another process has it, or it is no longer due
        if self._tls is None:
            self._tls = ssl.create_default_context()
        try:
            async with httpx.AsyncClient(
                verify=self._tls, timeout=TIMEOUT, follow_redirects=False, trust_env=False
            ) as http:
                while claim is not None and not self._stopping:
                    event = await outbox.next_event(self._engine, claim)
                    if event is None:
                        break
                    claim = await self._attempt(http, claim, event)
        finally:
            if claim is not None:
                with contextlib.suppress(*_WAITING):  # else the lease runs out on its own
                    await outbox.release(self._engine, claim)

    async def _attempt(
        self, http: httpx.AsyncClient, claim: outbox.Claim, event: StoredWatchEvent
    ) -> outbox.Claim | None:
        """One POST and its record; the claim to go on with, None when it was given up."""
        outcome, detail = await self._post(http, claim, event)
        WEBHOOK_DELIVERIES.labels(outcome=outcome.value).inc()
        now = datetime.now(UTC)
        if outcome is Outcome.ACKNOWLEDGED:
            WEBHOOK_DELIVERY_LAG.observe(max(0.0, (now - event.created_at).total_seconds()))
            return await outbox.acknowledged(self._engine, claim, event, now, _LEASE)
        dead = await outbox.failed(self._engine, claim, event, now, self._config.retry)
        log.warning(
            "webhook of %s: event %s %s (%s)%s",
            claim.platform,
            event.event_id,
            outcome.value,
            detail,
            f"; {dead} event(s) dead-lettered" if dead else "",
        )
        if dead:
            WEBHOOK_DEAD_LETTERS.inc(dead)
        return None

    async def _post(
        self, http: httpx.AsyncClient, claim: outbox.Claim, event: StoredWatchEvent
    ) -> tuple[Outcome, str]:
        try:
            target = addresses.parse(claim.url, allow_private=self._config.allow_private)
            address = await addresses.resolve(target, allow_private=self._config.allow_private)
        except WebhookUrlRefused as exc:
            return Outcome.REFUSED_ADDRESS, exc.detail
        body = payload(event)
        headers = signed_headers(claim.secret, event.event_id, body, datetime.now(UTC))
        headers["host"] = target.host_header
        # TLS to the address we checked, for the name in the URL (SNI and certificate check).
        extensions = {"sni_hostname": target.host} if target.parts.scheme == "https" else {}
        request = http.build_request(
            "POST", target.pinned(address), content=body, headers=headers, extensions=extensions
        )
        try:
            async with asyncio.timeout(TIMEOUT):  # in all: a receiver dripping bytes stops too
                response = await http.send(request, stream=True)
                try:
                    await _read_some(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return Outcome.TIMEOUT, f"no answer within {TIMEOUT:.0f} s"
        except httpx.HTTPError as exc:
            return Outcome.UNREACHABLE, type(exc).__name__
        if response.is_success:
            return Outcome.ACKNOWLEDGED, str(response.status_code)
        return Outcome.REJECTED, f"status {response.status_code}"

    async def _housekeep(self) -> None:
        """Now and then: the backlog of every platform, for the metrics."""
        now = asyncio.get_running_loop().time()
        if now - self._housekept < _HOUSEKEEPING_EVERY:
            return
        self._housekept = now
        backlog = await outbox.backlog(self._engine)
        WEBHOOKS_PENDING.set(backlog.pending)
        WEBHOOKS_FAILING.set(backlog.failing)
        oldest = backlog.oldest
        age = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
        WEBHOOK_OLDEST_PENDING.set(max(0.0, age))


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Wait a moment for `tasks`, then cancel those still running and wait for them."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=_STOP_GRACE)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _read_some(response: httpx.Response) -> None:
    """Read a short answer to its end, so the connection can carry the next event; stop early
    on a long one (nothing in it matters)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > _READ_AT_MOST:
            return
