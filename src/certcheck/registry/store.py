"""RegistryStore: certificates by number, from an in-process cache in front of the database.

Every committed import or sync bumps `registry_state.generation`. Each process polls it about
once a second and drops its cache when it moves, and every lookup reads the generation in the
same statement as the certificates, so an answer from an older registry is never cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, Select, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import String

from certcheck.db.deadline import Deadline
from certcheck.db.direct import DirectConnections
from certcheck.db.tables import certificates, registry_state
from certcheck.errors import RegistryStale, RegistryUnavailable
from certcheck.observability.metrics import (
    CACHE_HITS,
    CACHE_MISSES,
    REGISTRY_AGE,
    REGISTRY_CERTIFICATES,
    REGISTRY_GENERATION,
)
from certcheck.registry.cache import NOT_CACHED, CertificateCache
from certcheck.registry.compact import compact
from certcheck.registry.gather import Gatherer
from certcheck.registry.rows import FIELDS, certificate_from_row
from certcheck.verification.records import Certificate, Status

log = logging.getLogger(__name__)

# Cache-missing look-ups of single checks go together while others are on their way
# (registry/gather.py): two on their way at once, up to this many numbers in one. A request
# with more (a batch, a job's chunk) reads on its own, so single checks never queue behind it.
_GATHER_LANES = 2
_GATHER_MOST = 500
# Rows made into certificates, or certificates cached, between two turns of the event loop:
# ~7 us a row, so a few ms a turn.
_ROWS_A_TURN = 500
# asyncpg's own: the PostgreSQL look-up runs on the driver (_PG_LOOKUP).
_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _lookup_query(match: ColumnElement[bool]) -> Select[Any]:
    # A LEFT JOIN from the one state row: the generation comes back even when nothing matched.
    # A certificate's columns, not its digest (32 characters a row that no check reads).
    return (
        select(
            registry_state.c.generation.label("_generation"), *(certificates.c[f] for f in FIELDS)
        )
        .select_from(registry_state.outerjoin(certificates, match))
        .where(registry_state.c.id == 1)
    )


# Built once: making the statement cost more than running it on a cache-missing check.
_BY_ARRAY = _lookup_query(certificates.c.cert_no == any_(bindparam("nos", type_=ARRAY(String))))
# SQLite: the numbers as one JSON array, expanded by json_each. An IN list of bound parameters
# is a statement of its own for every length, and sqlite3 keeps the last 128 prepared on each
# connection: a job's chunks (up to 5,000 numbers, a new length nearly every time) filled each
# connection's cache with statements of ~1 MB and recompiled one per chunk (bench/README.md,
# "A look-up is one statement on SQLite").
_BY_JSON = _lookup_query(
    certificates.c.cert_no.in_(
        select(func.json_each(bindparam("nos", type_=String)).table_valued("value").c.value)
    )
)
# The same look-up as asyncpg's own SQL ($1 the numbers, $2 the state row's id): run by the
# driver, which keeps it prepared on each connection and hands back its rows as they are.
# Through SQLAlchemy's execution and result layers a cache-missing check cost more CPU than
# PostgreSQL spent answering it.
_PG_LOOKUP = str(_BY_ARRAY.compile(dialect=asyncpg_dialect()))  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class RegistryInfo:
    generation: int
    as_of: datetime
    refreshed_at: datetime
    source: str
    certificates: int
    by_status: dict[str, int]

    def age(self, now: datetime) -> timedelta:
        return now - self.refreshed_at


class RegistryStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        cache_size: int,
        cache_ttl: float,
        max_age: timedelta,
        db_timeout: float,
        deadline: Deadline | None = None,
        direct: DirectConnections | None = None,
    ) -> None:
        """`direct`: connections for the PostgreSQL look-ups (a server's), instead of the
        engine's pool."""
        self._engine = engine
        self._direct = direct
        self._postgres = engine.dialect.name == "postgresql"
        self._cache = CertificateCache(cache_size, cache_ttl)
        self._gather = Gatherer(self._read_gathered, lanes=_GATHER_LANES, most=_GATHER_MOST)
        self._max_age = max_age
        self.deadline = deadline or Deadline(db_timeout, abandon=self._postgres)
        self._info: RegistryInfo | None = None
        self._newest_seen = 0
        self.database_ok = False
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def info(self) -> RegistryInfo | None:
        return self._info

    def ensure_usable(self, now: datetime | None = None) -> RegistryInfo:
        """The registry to answer from, or the reason no decision may be given now."""
        info = self._info
        if info is None:
            raise RegistryUnavailable("no registry has been loaded", code="REGISTRY_UNAVAILABLE")
        age = info.age(now or datetime.now(UTC))
        if age > self._max_age:
            raise RegistryStale(
                f"the registry was last refreshed {int(age.total_seconds())} s ago, "
                f"over the maximum age of {int(self._max_age.total_seconds())} s"
            )
        return info

    async def refresh(self) -> RegistryInfo | None:
        """Read the registry state; drop the cache if another process committed a change."""
        try:
            # Always asked, even while the database is failing: this is the probe of its return.
            row = await self.deadline.call(self._read_state, probe=True)
        except _DB_ERRORS:
            self.database_ok = False
            raise
        self.database_ok = True
        info = (
            None
            if row is None
            else RegistryInfo(
                generation=row["generation"],
                as_of=row["as_of"],
                refreshed_at=row["refreshed_at"],
                source=row["source"],
                certificates=row["certificates"],
                by_status=dict(row["by_status"]),
            )
        )
        self._adopt(info)
        return info

    async def _read_state(self) -> Any:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(registry_state).where(registry_state.c.id == 1))
            return result.mappings().first()

    async def poll(self, interval: float) -> None:
        """Run for the life of the process: notice other processes' commits within `interval`."""
        while True:
            try:
                await self.refresh()
            except _DB_ERRORS as exc:
                log.warning("registry poll failed: %s", type(exc).__name__)
                self.report()  # the age keeps growing while the database is away
            except Exception:
                # Anything else is a bug to fix, but a dead poller would leave this process
                # answering from an old registry without a word: log it and keep polling.
                log.exception("registry poll failed unexpectedly")
            await asyncio.sleep(interval)

    async def lookup(
        self, cert_nos: Collection[str], *, now: datetime | None = None, remember: bool = True
    ) -> dict[str, Certificate | None]:
        """Certificates by normalised number; None where the registry has no such number.
        `now`: the caller's clock reading, if it has one (saves reading it again).
        `remember=False`: what is read is not cached (a re-check job's chunk: a job reads most
        of a registry once, which would push the real-time checks' numbers out of the cache
        and hold a cache's worth of memory for nothing); what is cached is still used."""
        self.ensure_usable(now)
        found: dict[str, Certificate | None] = {}
        missing: list[str] = []
        cache, moment = self._cache, self._cache.now()
        for no in dict.fromkeys(cert_nos):  # a number asked twice is looked up once
            cached = cache.get(no, moment)
            if cached is NOT_CACHED:
                missing.append(no)
            else:
                found[no] = cached
        self.cache_hits += len(found)
        self.cache_misses += len(missing)
        if found:
            CACHE_HITS.inc(len(found))
        if missing:
            CACHE_MISSES.inc(len(missing))
            found.update(await self._fetch(missing, remember))
        return found

    async def lookup_one(self, cert_no: str) -> Certificate | None:
        """`lookup((cert_no,))[cert_no]` for a caller that has asked `ensure_usable` already
        (Checker.check_one): one verify's number, without the second ask, the set, the dict
        and the loop that many numbers need."""
        cached = self._cache.get(cert_no, self._cache.now())
        if cached is not NOT_CACHED:
            self.cache_hits += 1
            CACHE_HITS.inc()
            return cached
        self.cache_misses += 1
        CACHE_MISSES.inc()
        return (await self._fetch([cert_no], True))[cert_no]

    async def _fetch(self, cert_nos: list[str], remember: bool) -> dict[str, Certificate | None]:
        try:
            if remember and len(cert_nos) <= _GATHER_MOST:
                return await self.deadline.call(lambda: self._gather.get(cert_nos))
            rows = await self.deadline.call(lambda: self._read(cert_nos))
        except _DB_ERRORS as exc:
            self.database_ok = False
            raise RegistryUnavailable(
                f"the registry database did not answer ({type(exc).__name__})"
            ) from exc
        return await self._remember(cert_nos, rows, keep=remember)

    async def _read_gathered(self, cert_nos: list[str]) -> dict[str, Certificate | None]:
        # Always tried: the checks it serves each asked the deadline before they waited.
        rows = await self.deadline.call(lambda: self._read(cert_nos), probe=True)
        return await self._remember(cert_nos, rows)

    async def _read(self, cert_nos: list[str]) -> list[Any]:
        if self._direct is not None:
            return await self._direct.fetch(_PG_LOOKUP, cert_nos, 1)
        async with self._engine.connect() as conn:
            if self._postgres:
                driver: Any = (await conn.get_raw_connection()).driver_connection
                # One statement on an autocommit connection (engine.py): its own snapshot.
                return list(await driver.fetch(_PG_LOOKUP, cert_nos, 1))
            # One statement, so one snapshot: its rows all carry the same generation.
            return list((await conn.execute(_BY_JSON, {"nos": json.dumps(cert_nos)})).mappings())

    async def _remember(
        self, asked: Iterable[str], rows: list[Any], *, keep: bool = True
    ) -> dict[str, Certificate | None]:
        """The answers for `asked` from `rows`, cached unless `keep` is False; `rows` is
        emptied.

        A batch's 10,000 rows made into certificates and cached in one piece held the event
        loop for 70-120 ms, every single check waiting behind them (bench/README.md,
        twenty-eighth pass): both are done a slice of rows at a time."""
        if not rows:
            raise RegistryUnavailable("no registry has been loaded")
        generation = max(row["_generation"] for row in rows)
        # Compacted only to be cached: sharing repeated values pays when they are kept.
        made = (lambda row: compact(certificate_from_row(row))) if keep else certificate_from_row
        read: dict[str, Certificate] = {}
        for start in range(0, len(rows), _ROWS_A_TURN):
            if start:
                await asyncio.sleep(0)
            for row in rows[start : start + _ROWS_A_TURN]:
                if row["cert_no"] is not None:
                    read[row["cert_no"]] = made(row)
        # The caller's list emptied: a cold batch's 10,000 driver rows (~8 MB, each with its
        # own copy of every text) are not held while the check goes on with their certificates.
        rows.clear()
        answers: dict[str, Certificate | None] = {}
        for no in asked:
            cert = read.get(no)
            # Keyed by the certificate's own number: a cached entry holds that string once.
            answers[no if cert is None else cert.cert_no] = cert
        if generation > self._newest_seen:
            # Another process committed: our poll will catch up, but stop serving old answers now.
            self._newest_seen = generation
            self._cache.clear()
        if keep:
            await self._cache_from(generation, answers)
        return answers

    async def _cache_from(self, generation: int, answers: dict[str, Certificate | None]) -> None:
        """Cache `answers`, read at `generation`, a slice at a time; asked before each slice,
        as the registry may move on between them: only answers of the one in use are kept."""
        items = list(answers.items())
        for start in range(0, len(items), _ROWS_A_TURN):
            if start:
                await asyncio.sleep(0)
            info = self._info
            if info is None or not generation == info.generation == self._newest_seen:
                return
            self._cache.put(dict(items[start : start + _ROWS_A_TURN]))

    def _adopt(self, info: RegistryInfo | None) -> None:
        old = self._info
        if info is None or old is None or info.generation != old.generation:
            self._cache.clear()
        if info is not None:
            self._newest_seen = max(self._newest_seen, info.generation)
        self._info = info
        self.report()

    def report(self) -> None:
        """Publish this process's view of the registry as gauges."""
        info = self._info
        if info is None:
            return
        REGISTRY_AGE.set(info.age(datetime.now(UTC)).total_seconds())
        REGISTRY_GENERATION.set(info.generation)
        for status in Status:
            REGISTRY_CERTIFICATES.labels(status=status.value).set(
                info.by_status.get(status.value, 0)
            )
