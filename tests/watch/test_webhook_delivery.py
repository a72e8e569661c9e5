"""Webhook delivery to a real receiver on loopback: signed, in order, once, retried, isolated."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.db.engine import create_engine
from certcheck.verification.records import Status
from certcheck.watch.delivery import WebhookDelivery
from certcheck.watch.processor import WatchProcessor
from tests.conftest import load
from tests.factories import cert
from tests.watch.helpers import A, B, all_events, ndjson, processor, put, registry
from tests.watch.receiver import HANG, Receiver, serving
from tests.watch.webhook_helpers import change, quick, register, status, until

LISTINGS = [{"listing_id": f"l{i}", "cert_no": A} for i in range(1, 5)]
REVOKED = registry(status=Status.REVOKED)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        max_registry_age=3600,
        watch_processor=False,  # the tests record events themselves (`change`)
        webhook_allow_private=True,  # the receiver is on loopback
        webhook_backoff_base=0.05,
        webhook_poll_interval=0.05,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as running:
        yield running


@pytest.fixture
async def watcher(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> WatchProcessor:
    """Four listings of the shop's on A, decided allow; a processor to record events."""
    await load(engine, registry())
    await client.get("/readyz")
    await put(client, shop, ndjson(LISTINGS))
    return await processor(engine)


def event_ids(events: list[dict[str, object]]) -> list[str]:
    return [str(e["event_id"]) for e in events]


class TestSigning:
    async def test_each_event_is_posted_as_pulled_and_signed_as_standard_webhooks_says(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        await change(engine, watcher, REVOKED)  # before the registration: never delivered
        before = await all_events(client, shop)
        secret = await register(client, shop, receiver.url())
        assert (await status(client, shop))["pending"] == 0
        await change(engine, watcher, registry())
        after = (await all_events(client, shop))[len(before) :]
        assert len(before) == len(after) == 4
        await until(lambda: len(receiver.got()) == 4, what="four deliveries")
        key = base64.b64decode(secret.removeprefix("whsec_"))
        for got, pulled in zip(receiver.got(), after, strict=True):
            assert got.json() == pulled
            assert got.headers["content-type"] == "application/json"
            assert got.event_id == pulled["event_id"]
            stamp = got.headers["webhook-timestamp"]
            assert abs(int(stamp) - time.time()) < 60
            # An implementation of our own, from the specification: stdlib hmac only.
            signed = f"{got.event_id}.{stamp}.".encode() + got.body
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            assert got.headers["webhook-signature"] == f"v1,{expected}"
        await until(lambda: len(receiver.acknowledged()) == 4, what="four acknowledgements")
        start = time.monotonic()
        while (state := await status(client, shop))["pending"]:  # the last one is being recorded
            assert time.monotonic() - start < 5, state
            await asyncio.sleep(0.02)
        assert state == {
            "url": receiver.url(),
            "pending": 0,
            "failing_since": None,
            "dead_lettered": 0,
        }

    async def test_the_readmes_receiver_code_verifies_a_real_delivery(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        secret = await register(client, shop, receiver.url())
        await change(engine, watcher, REVOKED)
        await until(lambda: len(receiver.got()) == 4, what="four deliveries")
        verified_event = readme_function("verified_event")
        got = receiver.got()[0]
        assert verified_event(got.body, got.headers, secret) == got.json()
        with pytest.raises(ValueError, match="signature"):
            verified_event(got.body.replace(b"block", b"allow"), got.headers, secret)
        with pytest.raises(ValueError, match="signature"):
            verified_event(got.body, got.headers, "whsec_" + base64.b64encode(b"x" * 32).decode())


def readme_function(name: str) -> Callable[..., Any]:
    """A function defined in one of the README's Python examples, run as it stands there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if f"def {name}(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    return function


class TestRetries:
    async def test_a_receiver_failing_three_times_gets_each_event_acknowledged_once_in_order(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        receiver.plan("/hook", [500, 503, 404])
        await register(client, shop, receiver.url())
        await change(engine, watcher, REVOKED)
        await change(engine, watcher, registry())
        events = event_ids(await all_events(client, shop))
        assert len(events) == 8
        await until(lambda: len(receiver.acknowledged()) == 8, what="eight acknowledgements")
        got = [r.event_id for r in receiver.got()]
        assert got[:4] == [events[0]] * 4  # three failures, then the acknowledgement
        assert receiver.acknowledged() == events
        # The receiver counts an event acknowledged as it answers; the service records it a
        # moment later.
        deadline = time.monotonic() + 15
        while (state := await status(client, shop))["pending"]:
            assert time.monotonic() < deadline, state
            await asyncio.sleep(0.05)
        assert (state["pending"], state["failing_since"], state["dead_lettered"]) == (0, None, 0)
        await asyncio.sleep(0.5)
        assert len(receiver.got()) == 11  # nothing is sent again once acknowledged

    async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        receiver.plan("/hook", [], then=307)
        await register(client, shop, receiver.url())
        await change(engine, watcher, REVOKED)
        await until(lambda: len(receiver.got()) >= 3, what="three attempts")
        assert receiver.got("/elsewhere") == []
        assert {r.event_id for r in receiver.got()} == {receiver.got()[0].event_id}
        state = await status(client, shop)
        assert state["pending"] == 4
        assert state["failing_since"] is not None
        assert state["dead_lettered"] == 0


class TestDeadLetters:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(
            database_url=database_url,
            max_registry_age=3600,
            watch_processor=False,
            webhook_allow_private=True,
            webhook_backoff_base=0.05,
            webhook_poll_interval=0.05,
            webhook_retry_hours=1 / 3600,  # one second
        )

    async def test_events_are_dead_lettered_after_the_retry_period_and_stay_pullable(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        receiver.plan("/hook", [], then=500)
        await register(client, shop, receiver.url())
        await change(engine, watcher, REVOKED)
        start = time.monotonic()
        while (state := await status(client, shop))["dead_lettered"] != 4:
            assert time.monotonic() - start < 15, state
            await asyncio.sleep(0.05)
        assert (state["pending"], state["failing_since"]) == (0, None)
        assert time.monotonic() - start >= 0.5  # retried for the period first
        assert len(await all_events(client, shop)) == 4  # still readable by pulling
        # The receiver recovers: the next events are delivered as usual.
        receiver.plan("/hook", [], then=200)
        await change(engine, watcher, registry())
        later = event_ids(await all_events(client, shop))[4:]
        await until(lambda: receiver.acknowledged() == later, what="the later events")


class TestIsolation:
    async def test_a_dead_receiver_of_another_platform_does_not_delay_this_one(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        other: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        receiver.plan("/hang", [], then=HANG)
        await put(client, other, ndjson([{"listing_id": "o1", "cert_no": B}]))
        await register(client, other, receiver.url("/hang"))
        await register(client, shop, receiver.url())
        await change(engine, watcher, [cert(A), cert(B, status=Status.REVOKED)])
        await until(lambda: len(receiver.got("/hang")) == 1, what="the other's attempt")
        await change(engine, watcher, [cert(A, status=Status.REVOKED), cert(B)])
        took = await until(lambda: len(receiver.acknowledged()) == 4, what="this platform's")
        assert took < 5  # the other's attempt is still waiting for an answer (10 s)
        assert len(receiver.got("/hang")) == 1
        assert (await status(client, other))["pending"] == 2

    async def test_two_processes_send_each_event_once(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        database_url: str,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        receiver.pause = 0.05  # deliveries overlap the others' looks for work
        engines = [create_engine(database_url) for _ in range(2)]
        others = [WebhookDelivery(e, quick()) for e in engines]
        for worker in others:
            worker.start()
        try:
            await register(client, shop, receiver.url())
            await change(engine, watcher, REVOKED)
            await change(engine, watcher, registry())
            events = event_ids(await all_events(client, shop))
            await until(lambda: len(receiver.got()) >= 8, what="eight deliveries")
            await asyncio.sleep(0.3)  # time for a second sending, if one were coming
        finally:
            for worker in others:
                await worker.stop()
            for e in engines:
                await e.dispose()
        assert Counter(r.event_id for r in receiver.got()) == Counter(events)
        assert receiver.acknowledged() == events


class TestAddressAtDelivery:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        # Registered while private addresses were allowed; delivered by a worker that refuses.
        return Settings(
            database_url=database_url,
            max_registry_age=3600,
            watch_processor=False,
            webhook_allow_private=True,
            webhook_deliveries=0,
        )

    async def test_a_private_address_is_refused_at_delivery_without_the_setting(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        await register(client, shop, receiver.url())
        strict = WebhookDelivery(engine, quick(allow_private=False))
        strict.start()
        try:
            await change(engine, watcher, REVOKED)

            start = time.monotonic()
            while (await status(client, shop))["failing_since"] is None:
                assert time.monotonic() - start < 10
                await asyncio.sleep(0.05)
        finally:
            await strict.stop()
        assert receiver.received == []
        assert (await status(client, shop))["pending"] == 4
