"""The upstream feed client (registry-format.md section 2): one page per call, bounded every way.

Each attempt has connect and read timeouts and an overall deadline (httpx's read timeout
restarts with every chunk, so a server trickling bytes would otherwise hold a run for ever).
429, 5xx and network errors are retried with capped exponential backoff and full jitter, or
after the upstream's Retry-After (capped). Bodies over a set size are cut off, redirects are
not followed, and every `FeedError` message is safe to log: no token, no query string.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

_SHOWN_CHARS = 200
_QUERY = re.compile(r"\?[^\s'\"]*")


class FeedError(Exception):
    """The feed could not be read, or sent what we refuse; the message is safe to show."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class FeedLimits:
    page_size: int = 1_000
    page_timeout: float = 60.0
    max_response_bytes: int = 16 << 20
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class FeedClient:
    """Fetches pages of `GET {base}/certificates`; the injected client carries URL and token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        limits: FeedLimits,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._limits = limits
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock

    async def fetch(self, *, since: datetime | None, token: str | None, deadline: float) -> bytes:
        """One page's body; `deadline` is on the injected clock and bounds retries too."""
        params = {"page_size": str(self._limits.page_size)}
        if since is not None:
            params["updated_since"] = rfc3339(since)
        if token is not None:
            params["page_token"] = token
        attempt = 1
        while True:
            try:
                return await self._attempt(params, deadline)
            except _Retryable as exc:
                await self._sleep(self._wait(exc, attempt, deadline))
            attempt += 1

    def redact(self, text: str) -> str:
        """`text` without the token or any query string it may have picked up."""
        secret = self._http.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if secret:
            text = text.replace(secret, "***")
        return _QUERY.sub("?...", text)

    async def _attempt(self, params: dict[str, str], deadline: float) -> bytes:
        budget = min(self._limits.page_timeout, deadline - self._clock())
        if budget <= 0:
            raise FeedError("the run's time ran out before the page was fetched")
        try:
            async with (
                asyncio.timeout(budget),
                self._http.stream("GET", "certificates", params=params) as response,
            ):
                _check_status(response)
                return await self._read(response)
        except TimeoutError:
            raise _Retryable(f"no complete answer within {budget:.3g} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(_describe(exc)) from None
        except httpx.HTTPError as exc:  # e.g. a body that does not decode
            raise FeedError(_describe(exc)) from None

    async def _read(self, response: httpx.Response) -> bytes:
        cap = self._limits.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FeedError(f"the page is {declared} bytes, over the limit of {cap}")
        body = bytearray()
        async for chunk in response.aiter_bytes():  # decoded: a gzip bomb meets the cap too
            body += chunk
            if len(body) > cap:
                raise FeedError(f"the page is over the limit of {cap} bytes")
        return bytes(body)

    def _wait(self, exc: _Retryable, attempt: int, deadline: float) -> float:
        limits = self._limits
        if attempt >= limits.max_attempts:
            raise FeedError(f"{exc.reason}; gave up after {attempt} attempts")
        if exc.retry_after is not None:
            wait = min(exc.retry_after, limits.retry_after_max)
        else:
            ceiling = min(limits.backoff_max, limits.backoff_base * 2 ** (attempt - 1))
            wait = self._jitter() * ceiling
        if self._clock() + wait >= deadline:
            raise FeedError(f"{exc.reason}; no time left in the run to try again")
        return wait


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status}", retry_after_seconds(response.headers))
    if 300 <= status < 400:
        raise FeedError(f"HTTP {status}: redirects are not followed; check CERTCHECK_UPSTREAM_URL")
    if status in (401, 403):
        raise FeedError(f"HTTP {status}: the upstream refused CERTCHECK_UPSTREAM_TOKEN")
    raise FeedError(f"HTTP {status} from the upstream feed")


def retry_after_seconds(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now (RFC 9110: delay-seconds or an HTTP-date), or None."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _describe(exc: Exception) -> str:
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text[:_SHOWN_CHARS]}"
