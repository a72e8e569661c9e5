"""FeedClient against httpx.MockTransport: what it asks, when it retries, what it refuses."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from certcheck.sync.feed import FeedClient, FeedError, FeedLimits, retry_after_seconds

TOKEN = "sekrit-upstream-token"
BODY = b'{"items": [], "next_page_token": null, "as_of": "2026-11-23T00:00:00Z"}'
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


@dataclass
class Clock:
    """Fake time: sleeping advances it, and every sleep is recorded."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


@dataclass
class Upstream:
    """Answers requests from a script, one response per request, the last one repeating."""

    script: list[httpx.Response | Exception]
    requests: list[httpx.Request] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def feed(handler: Handler, clock: Clock, *, jitter: float = 1.0, **limits: Any) -> FeedClient:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(handler),
        base_url="https://upstream.test/api/",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    return FeedClient(
        http,
        FeedLimits(page_size=50, **limits),
        sleep=clock.sleep,
        jitter=lambda: jitter,
        clock=clock,
    )


def ok(body: bytes = BODY, **headers: str) -> httpx.Response:
    # A stream, as from a server: httpx reads and decodes it only when the client does.
    headers.setdefault("Content-Length", str(len(body)))
    return httpx.Response(200, stream=httpx.ByteStream(body), headers=headers)


async def fetch(client: FeedClient, deadline: float = 1_000.0) -> bytes:
    return await client.fetch(since=None, token=None, deadline=deadline)


class TestRequest:
    async def test_asks_for_changes_since_the_cursor_with_the_token(self) -> None:
        upstream = Upstream([ok()])
        since = datetime(2026, 11, 20, 8, 30, tzinfo=UTC) + timedelta(microseconds=5)

        body = await feed(upstream, Clock()).fetch(since=since, token="p2", deadline=10)

        assert body == BODY
        (request,) = upstream.requests
        assert (request.method, request.url.path) == ("GET", "/api/certificates")
        assert dict(request.url.params) == {
            "updated_since": "2026-11-20T08:30:00.000005Z",
            "page_token": "p2",
            "page_size": "50",
        }
        assert request.headers["authorization"] == f"Bearer {TOKEN}"

    async def test_first_page_of_a_first_sync_names_no_cursor_or_token(self) -> None:
        upstream = Upstream([ok()])

        await fetch(feed(upstream, Clock()))

        assert dict(upstream.requests[0].url.params) == {"page_size": "50"}


class TestRetries:
    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    async def test_retries_throttling_and_server_errors(self, status: int) -> None:
        clock = Clock()
        upstream = Upstream([httpx.Response(status), ok()])

        assert await fetch(feed(upstream, clock, backoff_base=0.5)) == BODY

        assert len(upstream.requests) == 2
        assert clock.sleeps == [0.5]

    @pytest.mark.parametrize(
        "error",
        [
            httpx.ConnectError("[Errno 111] Connection refused"),
            httpx.ReadTimeout("timed out"),
            httpx.RemoteProtocolError("peer closed connection without sending complete body"),
        ],
    )
    async def test_retries_network_errors(self, error: Exception) -> None:
        upstream = Upstream([error, ok()])

        assert await fetch(feed(upstream, Clock())) == BODY
        assert len(upstream.requests) == 2

    async def test_backoff_doubles_up_to_its_cap_with_full_jitter(self) -> None:
        clock = Clock()
        upstream = Upstream([httpx.Response(503)])
        client = feed(upstream, clock, jitter=0.5, max_attempts=6, backoff_base=1, backoff_max=5)

        with pytest.raises(FeedError, match="HTTP 503; gave up after 6 attempts"):
            await fetch(client)

        assert clock.sleeps == [0.5, 1, 2, 2.5, 2.5]  # jitter x min(5, 1 x 2^n)
        assert len(upstream.requests) == 6

    @pytest.mark.parametrize(("retry_after", "waited"), [("7", 7.0), ("0", 0.0), ("3600", 60.0)])
    async def test_honours_retry_after_up_to_its_cap(self, retry_after: str, waited: float) -> None:
        clock = Clock()
        throttled = httpx.Response(429, headers={"Retry-After": retry_after})
        upstream = Upstream([throttled, ok()])

        await fetch(feed(upstream, clock, retry_after_max=60), deadline=10_000)

        assert clock.sleeps == [waited]

    async def test_gives_up_when_the_run_has_no_time_for_another_attempt(self) -> None:
        clock = Clock()
        upstream = Upstream([httpx.Response(429, headers={"Retry-After": "30"})])

        with pytest.raises(FeedError, match="HTTP 429; no time left in the run"):
            await fetch(feed(upstream, clock), deadline=20)

        assert (len(upstream.requests), clock.sleeps) == (1, [])

    async def test_a_run_whose_deadline_passed_asks_nothing(self) -> None:
        upstream = Upstream([ok()])

        with pytest.raises(FeedError, match="time ran out"):
            await fetch(feed(upstream, Clock(now=50)), deadline=50)

        assert upstream.requests == []


class TestRefusals:
    @pytest.mark.parametrize(
        ("status", "reason"),
        [
            (400, "HTTP 400 from the upstream feed"),
            (401, "HTTP 401: the upstream refused CERTCHECK_UPSTREAM_TOKEN"),
            (403, "HTTP 403: the upstream refused CERTCHECK_UPSTREAM_TOKEN"),
            (404, "HTTP 404 from the upstream feed"),
        ],
    )
    async def test_client_errors_are_not_retried(self, status: int, reason: str) -> None:
        upstream = Upstream([httpx.Response(status)])

        with pytest.raises(FeedError) as failed:
            await fetch(feed(upstream, Clock()))

        assert str(failed.value) == reason
        assert len(upstream.requests) == 1

    @pytest.mark.parametrize("status", [301, 302, 307, 308])
    async def test_redirects_are_not_followed(self, status: int) -> None:
        moved = httpx.Response(status, headers={"Location": "https://elsewhere.test/steal"})
        upstream = Upstream([moved, ok()])

        with pytest.raises(FeedError, match="redirects are not followed"):
            await fetch(feed(upstream, Clock()))

        assert [r.url.host for r in upstream.requests] == ["upstream.test"]

    async def test_declared_size_over_the_limit(self) -> None:
        upstream = Upstream([ok(b"x" * 2_000)])

        with pytest.raises(FeedError, match="the page is 2000 bytes, over the limit of 1024"):
            await fetch(feed(upstream, Clock(), max_response_bytes=1_024))

    async def test_streamed_size_over_the_limit(self) -> None:
        async def endless() -> AsyncIterator[bytes]:
            while True:
                yield b"x" * 512

        upstream = Upstream([httpx.Response(200, content=endless())])

        with pytest.raises(FeedError, match="over the limit of 1024 bytes"):
            await fetch(feed(upstream, Clock(), max_response_bytes=1_024))

    async def test_the_limit_counts_decompressed_bytes(self) -> None:
        bomb = gzip.compress(b" " * 100_000)
        upstream = Upstream([ok(bomb, **{"Content-Encoding": "gzip"})])

        with pytest.raises(FeedError, match="over the limit of 10000 bytes"):
            await fetch(feed(upstream, Clock(), max_response_bytes=10_000))

    async def test_gzip_that_does_not_decode(self) -> None:
        upstream = Upstream([ok(b"not gzip at all", **{"Content-Encoding": "gzip"})])

        with pytest.raises(FeedError, match="DecodingError"):
            await fetch(feed(upstream, Clock()))


class TestPageDeadline:
    async def test_a_trickling_body_is_cut_off_by_the_page_deadline(self) -> None:
        async def trickle() -> AsyncIterator[bytes]:
            for byte in BODY:
                await asyncio.sleep(0.02)  # every chunk in time for a read timeout
                yield bytes([byte])

        async def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=trickle())

        client = feed(handler, Clock(), page_timeout=0.2, max_attempts=1)
        started = asyncio.get_running_loop().time()

        with pytest.raises(FeedError, match=r"no complete answer within 0.2 s; gave up after 1"):
            await fetch(client)

        assert asyncio.get_running_loop().time() - started < 1


class TestRedaction:
    async def test_errors_carry_neither_token_nor_query(self) -> None:
        leaky = httpx.ConnectError(f"cannot reach https://u.test/x?key={TOKEN} with {TOKEN}")
        client = feed(Upstream([leaky]), Clock(), max_attempts=1)

        with pytest.raises(FeedError) as failed:
            await fetch(client)

        shown = client.redact(str(failed.value))
        assert TOKEN not in shown
        assert (
            shown
            == "ConnectError: cannot reach https://u.test/x?... with ***; gave up after 1 attempts"
        )


class TestRetryAfterHeader:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [
            ("120", 120.0),
            ("Mon, 23 Nov 2026 12:00:30 GMT", 30.0),
            ("Mon, 23 Nov 2026 11:00:00 GMT", 0.0),  # in the past: now
            ("soon", None),
            ("-5", None),
            ("", None),
        ],
    )
    def test_reads_seconds_or_an_http_date(self, value: str, seconds: float | None) -> None:
        now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

        assert retry_after_seconds(httpx.Headers({"Retry-After": value}), now) == seconds
