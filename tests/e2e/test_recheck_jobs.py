"""End to end: a re-check job survives `kill -9` of the process working it, and `certcheck
recheck` answers a file locally."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from certcheck.db.engine import create_engine
from certcheck.db.tables import recheck_chunks
from tests.e2e.servers import cli, running_server

pytestmark = pytest.mark.e2e

LINES = 30_000
LEASE_SECONDS = 5  # several times a 1,000-line chunk on a loaded machine: a lost lease redoes it


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CERTCHECK_DATABASE_URL": database_url,
        "HOME": str(tmp_path),
        "CERTCHECK_JOB_CHUNK_LINES": "1000",
        "CERTCHECK_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "CERTCHECK_JOB_POLL_INTERVAL": "0.2",
    }


@pytest.fixture
def numbers(env: dict[str, str], tmp_path: Path) -> list[str]:
    """A migrated database with a 2,000-certificate registry; their numbers."""
    snapshot = tmp_path / "registry.csv.gz"
    for args in (("db", "upgrade"), ("demo-registry", str(snapshot), "--count", "2000")):
        assert cli(env, *args).returncode == 0
    assert cli(env, "import", str(snapshot)).returncode == 0
    with gzip.open(snapshot, "rt", encoding="utf-8") as rows:
        return [row["cert_no"] for row in csv.DictReader(rows)]


def leased_chunks(database_url: str, *, expired: bool = False) -> int:
    """Chunks in the leased state; with `expired`, only those whose lease ran out: no worker
    can commit them any more (a worker that takes one again leases it anew)."""
    c = recheck_chunks.c
    leased = c.state == "leased"
    if expired:
        leased &= c.lease_until < datetime.now(UTC)

    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                query = select(func.count()).where(leased)
                return int(await conn.scalar(query) or 0)
        finally:
            await engine.dispose()

    return asyncio.run(count())


def poll(url: str, headers: dict[str, str], until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 600  # generous: 30,000 lines on a loaded machine
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(url, headers=headers).json()
        if until(job):
            return job
        time.sleep(0.02)
    raise AssertionError(f"the job never got there: {job}")


class TestKillMidJob:
    def test_results_are_complete_and_unique_after_restart(
        self, env: dict[str, str], numbers: list[str], tmp_path: Path, database_url: str
    ) -> None:
        key = cli(env, "keys", "create", "--platform", "shop", "--scope", "batch").stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}
        body = "".join(
            json.dumps({"cert_no": numbers[i % len(numbers)], "listing_id": f"l{i}"}) + "\n"
            for i in range(LINES)
        )
        hold = tmp_path / "hold"  # while it exists, workers keep the chunks they lease
        with running_server({**env, "CERTCHECK_JOB_HOLD_FILE": str(hold)}, tmp_path) as first:
            created = httpx.post(
                f"{first.base}/v1/recheck-jobs",
                content=body.encode(),
                headers={**headers, "Content-Type": "application/x-ndjson"},
                timeout=60,
            )
            assert created.status_code == 202, created.text
            location = created.headers["location"]
            poll(first.base + location, headers, lambda j: j["processed"] > 0)
            hold.touch()  # from now on no chunk commits: what is leased stays leased
            deadline = time.monotonic() + 120
            # A chunk still leased when its lease ran out is held for sure (one that was past
            # the hold when the file came may still commit): SIGKILL while it is.
            while not leased_chunks(database_url, expired=True):
                assert time.monotonic() < deadline, "no chunk held within 120 s"
                time.sleep(0.05)
            seen = httpx.get(first.base + location, headers=headers).json()
            assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        hold.unlink()
        assert 0 < seen["processed"] < LINES, "the job finished before the kill"
        assert leased_chunks(database_url) >= 1  # the chunks it held stay leased to the dead

        with running_server(env, tmp_path) as second:
            job = poll(second.base + location, headers, lambda j: j["status"] != "running")
            response = httpx.get(f"{second.base}{location}/results", headers=headers, timeout=60)
        assert job["status"] == "done", job
        assert job["processed"] == job["total"] == LINES
        assert sum(job["counts"].values()) == LINES
        results = [json.loads(line) for line in response.text.splitlines()]
        assert [r["line"] for r in results] == list(range(1, LINES + 1))
        assert [r["listing_id"] for r in results] == [f"l{i}" for i in range(LINES)]
        assert len({r["check_id"] for r in results}) == LINES
        assert {r["decision"] for r in results} <= {"allow", "block", "review"}
        assert {r["reason"] for r in results} >= {"VALID", "SUSPENDED"}


class TestRecheckCommand:
    def test_ndjson_file_to_output_file(
        self, env: dict[str, str], numbers: list[str], tmp_path: Path
    ) -> None:
        listings = tmp_path / "listings.ndjson"
        lines = [json.dumps({"cert_no": n, "listing_id": n}) for n in numbers[:5]]
        listings.write_text("\n".join([*lines, "", "{broken", '{"cert_no": "nope"}']) + "\n")
        output = tmp_path / "results.ndjson"
        done = cli(env, "recheck", str(listings), "-o", str(output))
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        results = [json.loads(line) for line in output.read_text().splitlines()]
        assert [r["line"] for r in results] == [1, 2, 3, 4, 5, 7, 8]
        assert [r["listing_id"] for r in results[:5]] == numbers[:5]
        assert results[5]["error"].startswith("invalid JSON")
        assert results[6]["reason"] == "MALFORMED"
        summary = json.loads(done.stderr)  # not a terminal: one parseable line
        assert summary == {
            "lines": 7,
            "allow": summary["allow"],
            "block": 7 - summary["allow"] - summary["review"],
            "review": summary["review"],
            "invalid_lines": 1,
        }

    def test_gzipped_csv_to_stdout(
        self, env: dict[str, str], numbers: list[str], tmp_path: Path
    ) -> None:
        listings = tmp_path / "listings.csv.gz"
        rows = "".join(f"{n},sku-{i}\r\n" for i, n in enumerate(numbers[:3]))
        listings.write_bytes(gzip.compress(f"cert_no,listing_id\r\n{rows}".encode()))
        done = cli(env, "recheck", str(listings))
        assert done.returncode == 0, done.stderr
        results = [json.loads(line) for line in done.stdout.splitlines()]
        assert [(r["line"], r["listing_id"]) for r in results] == [
            (2, "sku-0"),
            (3, "sku-1"),
            (4, "sku-2"),
        ]

    @pytest.mark.usefixtures("numbers")  # a registry is loaded: only the flood can fail it
    def test_a_flood_of_blank_lines_is_refused_as_an_upload_is(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        listings = tmp_path / "listings.ndjson.gz"
        listings.write_bytes(gzip.compress(b"\n" * (1 << 20) + b"{}\n", 9))  # ~1 KiB
        done = cli(env, "recheck", str(listings))  # CERTCHECK_JOB_MAX_BLANK_LINES: 100,000
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("certcheck: TOO_MANY_LINES: ")
        assert "100000 blank lines" in done.stderr
        assert done.stdout == ""

    def test_unknown_format_fails_in_one_line(self, env: dict[str, str], tmp_path: Path) -> None:
        listings = tmp_path / "listings.txt"
        listings.write_text("{}\n")
        done = cli(env, "recheck", str(listings))
        assert done.returncode == 1
        assert done.stderr.startswith("certcheck: ")
        assert "--format" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
