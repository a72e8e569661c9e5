"""Fixtures of the fault layer: a PostgreSQL cluster of our own, a database copied from a
prepared template per test, a fault proxy in front of the cluster, and certcheck served on it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from certcheck.db import migrate
from certcheck.db.engine import create_engine
from certcheck.keys import Scope
from certcheck.snapshots.demo import demo_certificates
from certcheck.verification.records import Certificate, Status
from tests.conftest import IN_CI, load, make_key, run_sync, today
from tests.e2e.servers import Server, running_server
from tests.faults.cluster import Cluster, find_initdb
from tests.faults.proxy import FaultProxy, fault_proxy

DEADLINE = 1.0  # CERTCHECK_DB_TIMEOUT of every served process, in seconds
TEMPLATE = "faults_template"


@dataclass(frozen=True)
class Registry:
    """The registry every test starts from, and what it may and may not allow."""

    key: str  # every scope
    certificates: tuple[Certificate, ...]
    absent: tuple[str, ...]  # well-formed numbers the registry does not hold

    @property
    def allowable(self) -> frozenset[str]:
        """The only numbers an answer may allow (a listing that claims nothing else)."""
        return frozenset(
            c.cert_no
            for c in self.certificates
            if c.status is Status.VALID and (c.expires_on is None or c.expires_on >= today())
        )

    @property
    def numbers(self) -> list[str]:
        """Known and absent numbers mixed, so any slice of it holds some of each."""
        known = [c.cert_no for c in self.certificates]
        mixed: list[str] = []
        for i, number in enumerate(known):
            mixed.append(number)
            if i % 4 == 3 and i // 4 < len(self.absent):
                mixed.append(self.absent[i // 4])
        return mixed

    @property
    def forbidden(self) -> list[str]:
        return [n for n in self.numbers if n not in self.allowable]


def _absent(known: set[str], count: int) -> tuple[str, ...]:
    candidates = (f"2023010901{900_000 + i:06d}" for i in range(count * 2))
    return tuple(n for n in candidates if n not in known)[:count]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    initdb = find_initdb()
    if initdb is None:
        if IN_CI:
            pytest.fail("initdb is missing: the fault tests need PostgreSQL's server programs")
        pytest.skip("initdb is not installed (PostgreSQL server programs)")
    pg = Cluster(initdb)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


async def _admin(pg: Cluster, statement: str) -> None:
    conn = await asyncpg.connect(pg.url("postgres", driver=""), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _prepare(url: str, certificates: list[Certificate]) -> str:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        await load(engine, certificates)
        return await make_key(engine, *Scope, platform="faults")
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def registry(cluster: Cluster) -> Registry:
    """A migrated template database with a known registry and a key; copied for each test."""
    certificates = list(demo_certificates(400, today=today()))
    run_sync(_admin(cluster, f'CREATE DATABASE "{TEMPLATE}"'))
    key = run_sync(_prepare(cluster.url(TEMPLATE), certificates))
    absent = _absent({c.cert_no for c in certificates}, 100)
    return Registry(key=key, certificates=tuple(certificates), absent=absent)


@pytest.fixture
def database(cluster: Cluster, registry: Registry) -> Iterator[str]:
    """A fresh copy of the template; the cluster runs again after the test, whatever it did."""
    name = f"faults_{uuid.uuid4().hex[:10]}"
    run_sync(_admin(cluster, f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    try:
        yield name
    finally:
        cluster.ensure_running()
        run_sync(_admin(cluster, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[FaultProxy]:
    with fault_proxy(cluster.port) as running:
        yield running


@dataclass
class Deployment:
    """How to serve certcheck on the test's database, through the proxy or straight."""

    cluster: Cluster
    proxy: FaultProxy
    database: str
    workdir: Path

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            "CERTCHECK_DATABASE_URL": self.cluster.url(self.database, port=self.proxy.port),
            "CERTCHECK_DB_TIMEOUT": str(DEADLINE),
            "CERTCHECK_MAX_REGISTRY_AGE": "3600",
            "CERTCHECK_SHUTDOWN_DRAIN": "1",
            "CERTCHECK_JOB_CHUNK_LINES": "1000",
            "CERTCHECK_JOB_LEASE_SECONDS": "2",
            "CERTCHECK_JOB_POLL_INTERVAL": "0.2",
            **overrides,
        }

    @contextlib.contextmanager
    def serve(self, *args: str, **overrides: str) -> Iterator[Server]:
        # A generous start-up wait: two worker processes booting on a busy 2-core box are slow.
        with running_server(self.env(**overrides), self.workdir, *args, wait=60) as server:
            yield server


@pytest.fixture
def deployment(cluster: Cluster, proxy: FaultProxy, database: str, tmp_path: Path) -> Deployment:
    return Deployment(cluster, proxy, database, tmp_path)
