"""End to end: `kill -9` of every serve process in the middle of a watch round loses and repeats
no event (docs/watch.md: a round's decisions, events and cursor commit together)."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.watch import revoked_snapshot
from sqlalchemy import func, select

from certcheck.db.engine import create_engine
from certcheck.db.tables import watch_events
from tests.e2e.servers import cli, running_server

pytestmark = pytest.mark.e2e

WATCHED = 3_000


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CERTCHECK_DATABASE_URL": database_url,
        "HOME": str(tmp_path),
        "CERTCHECK_WATCH_POLL_INTERVAL": "0.2",
        "CERTCHECK_GENERATION_POLL_INTERVAL": "0.2",
    }


def _registry(env: dict[str, str], tmp_path: Path) -> list[dict[str, str]]:
    """A migrated database holding a 200-certificate demo registry; its rows."""
    snapshot = tmp_path / "registry.csv.gz"
    for args in (("db", "upgrade"), ("demo-registry", str(snapshot), "--count", "200")):
        assert cli(env, *args).returncode == 0
    assert cli(env, "import", str(snapshot)).returncode == 0
    with gzip.open(snapshot, "rt", encoding="utf-8", newline="") as rows:
        return list(csv.DictReader(rows))


def _stored_events(database_url: str) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(select(func.count()).select_from(watch_events)) or 0)
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _all_events(base: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    since: str | None = None
    while True:
        params = {"limit": "1000", **({"since": since} if since else {})}
        page = httpx.get(f"{base}/v1/watch/events", params=params, headers=headers).json()
        events += page["events"]
        if not page["events"]:
            return events
        since = page["next"]


def _wait_for(server_output: Any, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in server_output():
        assert time.monotonic() < deadline, f"{text!r} not seen in {seconds} s"
        time.sleep(0.05)


class TestKillMidRound:
    def test_no_event_is_lost_or_repeated(
        self, env: dict[str, str], tmp_path: Path, database_url: str
    ) -> None:
        rows = _registry(env, tmp_path)
        target = next(r["cert_no"] for r in rows if r["status"] == "valid")
        key = cli(env, "keys", "create", "--platform", "shop", "--scope", "batch").stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}
        body = "".join(
            json.dumps({"listing_id": f"l{i}", "cert_no": target}) + "\n" for i in range(WATCHED)
        )
        hold = tmp_path / "hold"  # while it exists, a round that did its work does not commit
        held_env = {**env, "CERTCHECK_WATCH_HOLD_FILE": str(hold)}
        with running_server(held_env, tmp_path, "--workers", "2") as first:
            put = httpx.put(
                f"{first.base}/v1/watch/listings",
                content=body.encode(),
                headers={**headers, "Content-Type": "application/x-ndjson"},
                timeout=60,
            )
            assert put.status_code == 200, put.text
            hold.touch()
            imported = cli(
                env, "import", str(revoked_snapshot(rows, target, tmp_path / "revoked.csv.gz"))
            )
            assert imported.returncode == 0, imported.stderr
            _wait_for(first.output, "watch round held before its commit", 60)
            assert _stored_events(database_url) == 0  # the round is mid-way, nothing committed
            os.killpg(first.process.pid, signal.SIGKILL)
            assert first.process.wait(timeout=15) == -signal.SIGKILL
        hold.unlink()

        with running_server(env, tmp_path, "--workers", "2") as second:
            deadline = time.monotonic() + 120
            while len(events := _all_events(second.base, headers)) < WATCHED:
                assert time.monotonic() < deadline, f"{len(events)} of {WATCHED} events"
                time.sleep(0.2)
            time.sleep(1.0)  # a repeat would come from a round after the first commit
            events = _all_events(second.base, headers)
        assert len(events) == WATCHED
        assert sorted(e["listing_id"] for e in events) == sorted(f"l{i}" for i in range(WATCHED))
        assert {(e["old_decision"], e["new_decision"], e["reason"]) for e in events} == {
            ("allow", "block", "REVOKED")
        }
        assert (
            len({e["event_id"] for e in events}) == len({e["check_id"] for e in events}) == WATCHED
        )
        assert _stored_events(database_url) == WATCHED
