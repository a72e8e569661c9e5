"""The import baseline: load a snapshot into the certificates table the plain way.

    python -m bench.baselines.plain_loader SNAPSHOT.csv.gz DATABASE_URL

Parse the gzip CSV with the csv module, convert each row to the table's types and a digest,
then on PostgreSQL one COPY through asyncpg's `copy_records_to_table`, on SQLite one
`executemany` in one transaction. No validation, no diff, no change feed: the floor for what
`certcheck import` does into an empty registry.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from datetime import date

_COLUMNS = (
    "cert_no",
    "status",
    "holder",
    "manufacturer",
    "factory",
    "product_code",
    "product_name",
    "models",
    "issued_on",
    "expires_on",
    "status_changed_on",
    "status_reason",
    "digest",
)
_DATES = (8, 9, 10)  # issued_on, expires_on, status_changed_on in the snapshot's columns
Row = tuple[object, ...]


def rows(path: str, *, iso_dates: bool) -> Iterator[Row]:
    """The table's rows; dates as `date` (asyncpg) or ISO text (SQLite, as SQLAlchemy stores)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        next(reader)  # the header: the demo snapshot's columns are in the table's order
        for fields in reader:
            values: list[object] = [value or None for value in fields]
            values[7] = json.dumps(fields[7].split("|"), ensure_ascii=False)
            if not iso_dates:
                for i in _DATES:
                    values[i] = date.fromisoformat(fields[i]) if fields[i] else None
            digest = hashlib.blake2b("\x1f".join(fields).encode(), digest_size=16).hexdigest()
            yield (*values, digest)


async def load_postgresql(path: str, url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "certificates", records=rows(path, iso_dates=False), columns=_COLUMNS
            )
        count: int = await conn.fetchval("SELECT count(*) FROM certificates")
        return count
    finally:
        await conn.close()


def load_sqlite(path: str, url: str) -> int:
    conn = sqlite3.connect(url.split(":///", 1)[1])
    try:
        marks = ", ".join("?" for _ in _COLUMNS)
        with conn:  # one transaction
            conn.executemany(
                f"INSERT INTO certificates ({', '.join(_COLUMNS)}) VALUES ({marks})",
                rows(path, iso_dates=True),
            )
        count: int = conn.execute("SELECT count(*) FROM certificates").fetchone()[0]
        return count
    finally:
        conn.close()


def main() -> None:
    path, url = sys.argv[1], sys.argv[2]
    if url.startswith("postgresql"):
        count = asyncio.run(load_postgresql(path, url))
    else:
        count = load_sqlite(path, url)
    print(count)


if __name__ == "__main__":
    main()
