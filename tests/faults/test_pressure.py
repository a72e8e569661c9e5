"""Pressure from inside: a long import beside real-time checks, every bulk connection taken,
SIGTERM under load, and a worker process killed in the middle of a re-check job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from certcheck.snapshots.demo import demo_certificates
from certcheck.snapshots.writer import write_snapshot
from tests.conftest import today
from tests.e2e.servers import Server
from tests.faults.conftest import DEADLINE, Deployment, Registry
from tests.faults.load import Load, assert_contract, client, verify, within

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.timeout(120)]

BIG_IMPORT = 20_000  # certificates: an import that takes seconds, not milliseconds
JOB_LINES = 8_000
BULK_CONNECTIONS = 8  # app.py's bulk pool: 4, and as many again in overflow (db/engine.py)


def admin(registry: Registry) -> dict[str, str]:
    return {"Authorization": f"Bearer {registry.key}"}


class TestLongImport:
    def test_realtime_checks_continue_while_an_import_holds_the_database(
        self, deployment: Deployment, registry: Registry, tmp_path: Path
    ) -> None:
        snapshot = tmp_path / "big.csv.gz"
        known = {c.cert_no for c in registry.certificates}
        extra = (
            c
            for c in demo_certificates(BIG_IMPORT, today=today(), seed=7)
            if c.cert_no not in known
        )
        write_snapshot(snapshot, [*registry.certificates, *extra])
        imported: list[httpx.Response] = []

        def run_import(server: Server) -> None:
            imported.append(
                httpx.post(
                    f"{server.base}/v1/admin/registry/import",
                    content=snapshot.read_bytes(),
                    headers={
                        **admin(registry),
                        "Content-Type": "text/csv",
                        "Content-Encoding": "gzip",
                    },
                    timeout=110,
                )
            )

        # A short cache TTL: every check goes to the database while the import runs.
        with deployment.serve(CERTCHECK_CACHE_TTL="0.05") as server:
            importer = threading.Thread(target=run_import, args=(server,))
            with Load(server.base, registry.key, registry.numbers, deadline=DEADLINE) as load:
                time.sleep(0.3)
                started = time.monotonic()
                importer.start()
                importer.join(timeout=110)
                finished = time.monotonic()
            info = httpx.get(f"{server.base}/v1/registry", headers=admin(registry)).json()

        assert imported, "the import did not answer"
        assert imported[0].status_code == 200, imported[0].text
        assert info["certificates"] > len(registry.certificates)
        assert_contract(load.answers, registry.allowable, DEADLINE)
        during = list(within(load.answers, started, finished))
        assert during, "no check was made during the import"
        failed = [a.describe() for a in during if a.status != 200]
        assert not failed, f"{len(failed)} of {len(during)} checks failed: {failed[:10]}"


def _big_snapshot(registry: Registry, path: Path) -> Path:
    known = {c.cert_no for c in registry.certificates}
    extra = (
        c for c in demo_certificates(BIG_IMPORT, today=today(), seed=7) if c.cert_no not in known
    )
    write_snapshot(path, [*registry.certificates, *extra])
    return path


async def _lock_job_tables(url: str, held: threading.Event, release: threading.Event) -> None:
    """Hold the re-check tables locked (as a stuck migration or a long vacuum would) until
    `release`: every job worker's poll then waits on the lock with its bulk connection."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE recheck_chunks IN ACCESS EXCLUSIVE MODE")
            held.set()
            await asyncio.to_thread(release.wait)
    finally:
        await conn.close()


async def _lock_for(url: str, table: str, seconds: float, held: asyncio.Event) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            held.set()
            await asyncio.sleep(seconds)
    finally:
        await conn.close()


async def _locks_in_turn(url: str, held: threading.Event) -> None:
    """The key table locked for 0.7 deadline, the certificates for 1.4: a request that starts
    now waits 0.7 for its key, then 0.7 more for its number, each look-up within the deadline."""
    keys, numbers = asyncio.Event(), asyncio.Event()
    both = asyncio.gather(
        _lock_for(url, "api_keys", 0.7 * DEADLINE, keys),
        _lock_for(url, "certificates", 1.4 * DEADLINE, numbers),
    )
    await keys.wait()
    await numbers.wait()
    held.set()
    await both


async def _waiting_on_locks(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        waiting: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return waiting
    finally:
        await conn.close()


class TestSlowLookups:
    def test_the_key_and_the_number_share_one_deadline(
        self, deployment: Deployment, registry: Registry
    ) -> None:
        url = deployment.cluster.url(deployment.database, driver="")
        held = threading.Event()
        locker = threading.Thread(target=asyncio.run, args=(_locks_in_turn(url, held),))
        # No key cache: every request looks its key up, then its number (none cached yet).
        with deployment.serve(CERTCHECK_KEY_CACHE_TTL="0") as server:
            with client(server.base, registry.key, DEADLINE) as http:
                warm = verify(http, registry.numbers[0])  # connections made, statements ready
                locker.start()
                assert held.wait(10), "the tables were not locked"
                answer = verify(http, registry.numbers[1])
            locker.join(timeout=10)
        assert warm.status == 200, warm.describe()
        assert_contract([answer], registry.allowable, DEADLINE)
        assert answer.status == 503, answer.describe()


class TestBulkPoolExhausted:
    def test_realtime_checks_answer_while_every_bulk_connection_is_taken(
        self, deployment: Deployment, registry: Registry, tmp_path: Path
    ) -> None:
        """More job workers than bulk connections, all stuck behind a lock, and a long import
        waiting for a connection: real-time checks have a pool of their own and answer."""
        url = deployment.cluster.url(deployment.database, driver="")
        snapshot = _big_snapshot(registry, tmp_path / "big.csv.gz")
        held, release = threading.Event(), threading.Event()
        locker = threading.Thread(target=asyncio.run, args=(_lock_job_tables(url, held, release),))
        imported: list[httpx.Response] = []
        workers = str(BULK_CONNECTIONS + 4)
        with deployment.serve(CERTCHECK_CACHE_TTL="0.05", CERTCHECK_JOB_WORKERS=workers) as server:
            locker.start()
            try:
                assert held.wait(10), "the job tables could not be locked"
                deadline = time.monotonic() + 30
                while asyncio.run(_waiting_on_locks(url)) < BULK_CONNECTIONS:
                    assert time.monotonic() < deadline, "the bulk pool never filled up"
                    time.sleep(0.1)
                importer = threading.Thread(
                    target=lambda: imported.append(_post_import(server, registry, snapshot))
                )
                with Load(server.base, registry.key, registry.numbers, deadline=DEADLINE) as load:
                    importer.start()
                    started = time.monotonic()
                    time.sleep(3)
                    finished = time.monotonic()
                    saturated = asyncio.run(_waiting_on_locks(url))
            finally:
                release.set()
                locker.join(timeout=30)
            importer.join(timeout=110)
        # Every bulk connection was still waiting on the lock when the load stopped.
        assert saturated >= BULK_CONNECTIONS
        assert_contract(load.answers, registry.allowable, DEADLINE)
        during = list(within(load.answers, started, finished))
        assert len(during) > 10, "too few checks were made while the pool was full"
        failed = [a.describe() for a in during if a.status != 200]
        assert not failed, f"{len(failed)} of {len(during)} checks failed: {failed[:10]}"
        # The import waited for a connection, and ran once the workers let theirs go.
        assert imported, "the import did not answer"
        assert imported[0].status_code == 200, imported[0].text


def _post_import(server: Server, registry: Registry, snapshot: Path) -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/admin/registry/import",
        content=snapshot.read_bytes(),
        headers={**admin(registry), "Content-Type": "text/csv", "Content-Encoding": "gzip"},
        timeout=110,
    )


class TestSigterm:
    def test_graceful_under_load(self, deployment: Deployment, registry: Registry) -> None:
        with deployment.serve() as server:
            load = Load(server.base, registry.key, registry.numbers, deadline=DEADLINE)
            with load:
                time.sleep(1.0)
                signalled = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                code = server.process.wait(timeout=30)
                time.sleep(0.3)  # some requests meet the closed port
        problems = []
        try:
            # Refused connections after the listener closed are fine; cut answers are not.
            assert_contract(load.answers, registry.allowable, DEADLINE, refused_ok=True)
        except AssertionError as exc:
            problems.append(str(exc).split("\nassert ")[0])
        drain = list(within(load.answers, signalled, signalled + 0.8))  # the drain is 1 s
        if not drain or {a.status for a in drain} != {200}:
            problems.append(f"during the drain: {[a.describe() for a in drain][:10]}")
        if code not in (0, -signal.SIGTERM):
            problems.append(f"exit status {code}")
        if "Application shutdown complete" not in server.output():
            problems.append(f"no clean shutdown; the log ends:\n{server.output()[-600:]}")
        assert not problems, "\n".join(problems)


async def _leased_by(url: str) -> str | None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        found: str | None = await conn.fetchval(
            "SELECT leased_by FROM recheck_chunks WHERE state = 'leased' LIMIT 1"
        )
        return found
    finally:
        await conn.close()


def _kill_a_leaseholder(deployment: Deployment, server: Server) -> int:
    """SIGKILL the worker process holding a chunk of the job; its pid."""
    url = deployment.cluster.url(deployment.database, driver="")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        holder = asyncio.run(_leased_by(url))
        if holder is not None:
            pid = int(holder.split(":")[1])  # host:pid:token:n (jobs/worker.py)
            # Only a process of the server's own group: never anything we did not start.
            assert os.getpgid(pid) == server.process.pid
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.01)
    raise AssertionError("no chunk was ever leased")


def _poll_job(server: Server, job_url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.base}{job_url}", headers=headers, timeout=10)
        if response.status_code == 200:
            job = response.json()
            if job["status"] not in ("queued", "running"):
                return job
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish: {job}")


class TestWorkerKilled:
    def test_job_finishes_with_every_line_answered_once(
        self, deployment: Deployment, registry: Registry
    ) -> None:
        numbers = registry.numbers
        lines = [numbers[i % len(numbers)] for i in range(JOB_LINES)]
        body = "".join(
            json.dumps({"cert_no": n, "listing_id": f"l{i}"}) + "\n" for i, n in enumerate(lines)
        )
        headers = admin(registry)
        with deployment.serve("--workers", "2", CERTCHECK_JOB_CHUNK_LINES="500") as server:
            created = httpx.post(
                f"{server.base}/v1/recheck-jobs",
                content=body.encode(),
                headers={**headers, "Content-Type": "application/x-ndjson"},
                timeout=60,
            )
            assert created.status_code == 202, created.text
            job_url = created.headers["location"]
            _kill_a_leaseholder(deployment, server)
            job = _poll_job(server, job_url, headers)
            results = httpx.get(f"{server.base}{job_url}/results", headers=headers, timeout=60)
            with client(server.base, registry.key, DEADLINE) as http:
                after = [verify(http, n) for n in numbers[:40]]
        assert job["status"] == "done", job
        assert job["processed"] == job["total"] == JOB_LINES
        rows = [json.loads(line) for line in results.text.splitlines()]
        assert [r["line"] for r in rows] == list(range(1, JOB_LINES + 1))
        assert [r["listing_id"] for r in rows] == [f"l{i}" for i in range(JOB_LINES)]
        assert len({r["check_id"] for r in rows}) == JOB_LINES
        wrongly_allowed = {r["cert_no"] for r in rows if r["decision"] == "allow"}
        assert not wrongly_allowed - registry.allowable
        assert_contract(after, registry.allowable, DEADLINE)
