"""Importing a whole snapshot, against parsing the same file alone, in the same run.

    .venv/bin/python bench/import_bench.py [--count 1000000] [--database sqlite postgresql]

The baseline is the parser on its own (no database): the ratio says what staging, diffing and
swapping the registry cost on top of reading the file. The import runs twice: into an empty
registry, then the same snapshot again (every row compared, nothing changed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench._common import cli, database_url, drop_database
from certcheck.registry.snapshot import detect_format, iter_snapshot
from certcheck.verification.numbers import today_in_shanghai


def parse_only(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as stream:
        fmt = detect_format(filename=path.name)
        for _ in iter_snapshot(stream, fmt, today=today_in_shanghai(datetime.now(UTC))):
            pass
    return time.perf_counter() - started


def timed_import(env: dict[str, str], path: Path) -> float:
    started = time.perf_counter()
    cli(env, "import", str(path))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--database", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        snapshot = work / "registry.csv.gz"
        cli({}, "demo-registry", str(snapshot), "--count", str(args.count))
        baseline = parse_only(snapshot)
        print(f"{args.count:,} certificates, {snapshot.stat().st_size / 1e6:.0f} MB gzip CSV")
        print(f"parse only (baseline): {baseline:6.1f} s")
        for kind in args.database:
            url = database_url(kind, work)
            env = {"CERTCHECK_DATABASE_URL": url}
            try:
                cli(env, "db", "upgrade")
                first = timed_import(env, snapshot)
                again = timed_import(env, snapshot)
            finally:
                drop_database(url)
            print(f"{kind:10} import into empty: {first:6.1f} s  ratio {first / baseline:.2f}")
            print(f"{kind:10} same again:        {again:6.1f} s  ratio {again / baseline:.2f}")


if __name__ == "__main__":
    main()
