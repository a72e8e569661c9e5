"""The database goes away (down, killed, frozen, unreachable, too slow) and comes back; certcheck
keeps the contract throughout and recovers without a restart."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.servers import Server
from tests.faults.conftest import DEADLINE, Deployment, Registry
from tests.faults.load import SLACK, Answer, Load, assert_contract, client, verify, within

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.timeout(90)]

RECOVERY = 5.0  # seconds from the database's return to answers from it
# Seconds each outage lasts: past the default key cache TTL (5 s), so a key checked just
# before the outage must be trusted from the cache for part of it.
OUTAGE = 5.5


def probe(server: Server, path: str) -> tuple[int, float]:
    started = time.monotonic()
    status = httpx.get(f"{server.base}{path}", timeout=DEADLINE + 5).status_code
    return status, time.monotonic() - started


def wait_ready(server: Server, seconds: float) -> float:
    """Seconds until /readyz answered 200; fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if probe(server, "/readyz")[0] == 200:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not ready {seconds} s after the database came back")


def statuses(answers: list[Answer]) -> dict[str, int]:
    """How many answers of each kind: `200`, `503 REGISTRY_UNAVAILABLE`, `ReadTimeout`, ..."""
    return dict(Counter(a.error or f"{a.status} {a.code or ''}".strip() for a in answers))


@dataclass
class Outage:
    begin: Callable[[], None]
    end: Callable[[], None]


def outages(d: Deployment) -> dict[str, Outage]:
    return {
        # api.md: killed outright, then restarted (crash recovery on start).
        "killed": Outage(lambda: d.cluster.stop("immediate"), d.cluster.start),
        # The postmaster and every backend stopped: connections accepted, nothing answered.
        "frozen": Outage(d.cluster.freeze, d.cluster.thaw),
        # The network drops everything, in both directions, on open connections too.
        "blackhole": Outage(d.proxy.blackhole, d.proxy.passthrough),
        # Every packet later than the deadline: slow, not down.
        "slow": Outage(lambda: d.proxy.delay(int(DEADLINE * 1500)), d.proxy.passthrough),
    }


class TestDatabaseDownAtStart:
    def test_starts_unready_and_becomes_ready_without_a_restart(
        self, deployment: Deployment, registry: Registry
    ) -> None:
        deployment.cluster.stop()
        with deployment.serve() as server:
            assert probe(server, "/healthz")[0] == 200
            status, took = probe(server, "/readyz")
            assert status == 503
            assert took <= DEADLINE + SLACK
            with client(server.base, registry.key, DEADLINE) as http:
                down = [verify(http, n) for n in registry.numbers[:20]]
            assert_contract(down, registry.allowable, DEADLINE)
            assert {a.status for a in down} == {503}, statuses(down)

            deployment.cluster.start()
            wait_ready(server, RECOVERY)
            with client(server.base, registry.key, DEADLINE) as http:
                up = [verify(http, n) for n in registry.numbers]
            assert_contract(up, registry.allowable, DEADLINE)
            assert {a.status for a in up} == {200}, statuses(up)
            assert server.process.poll() is None


class TestOutageUnderLoad:
    @pytest.mark.parametrize("kind", ["killed", "frozen", "blackhole", "slow"])
    def test_cached_answers_continue_the_rest_fail_fast_then_recover(
        self, kind: str, deployment: Deployment, registry: Registry
    ) -> None:
        outage = outages(deployment)[kind]
        warm, cold = registry.numbers[:50], registry.numbers[50:]
        with deployment.serve() as server:
            with client(server.base, registry.key, DEADLINE) as http:
                before = [verify(http, n) for n in warm]  # now cached
            assert {a.status for a in before} == {200}, statuses(before)

            cached = Load(server.base, registry.key, warm, deadline=DEADLINE)
            uncached = Load(server.base, registry.key, cold, deadline=DEADLINE)
            with cached:
                time.sleep(0.5)  # the load is on when the fault strikes
                outage.begin()
                down = time.monotonic()
                with uncached:
                    time.sleep(OUTAGE / 2)
                    status, took = probe(server, "/readyz")
                    time.sleep(OUTAGE / 2)
                    back = time.monotonic()
                    outage.end()
                    recovered = _wait_for_answers(uncached, time.monotonic(), RECOVERY)
                    wait_ready(server, RECOVERY)
            assert server.process.poll() is None, "certcheck died"

        problems = _judge(registry, [*before, *cached.answers, *uncached.answers])
        if status != 503 or took > DEADLINE + SLACK:
            problems.append(f"/readyz during the outage: {status} in {took:.2f} s")
        hits = list(within(cached.answers, down, back))
        if not hits or {a.status for a in hits} != {200}:
            problems.append(f"cached numbers during the outage: {statuses(hits)}")
        misses = list(within(uncached.answers, down, back))
        if not misses or {a.status for a in misses} != {503}:
            problems.append(f"uncached numbers during the outage: {statuses(misses)}")
        if recovered is None:
            problems.append(f"no answer from the database {RECOVERY} s after its return")
        assert not problems, "\n".join(problems)


def _judge(registry: Registry, answers: list[Answer]) -> list[str]:
    try:
        assert_contract(answers, registry.allowable, DEADLINE)
    except AssertionError as exc:
        return [str(exc).split("\nassert ")[0]]
    return []


def _wait_for_answers(load: Load, since: float, seconds: float) -> float | None:
    """Seconds until `load` got a 200 for a request made after `since`; None if none came."""
    deadline = since + seconds
    while time.monotonic() < deadline:
        if any(a.status == 200 and a.started >= since for a in list(load.answers)):
            return time.monotonic() - since
        time.sleep(0.05)
    return None
