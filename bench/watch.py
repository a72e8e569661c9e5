"""Listing watch at scale: one certificate revoked under many watched listings.

    python -m bench.watch                       # 100,000 listings, SQLite and PostgreSQL
    python -m bench.watch --listings 1000000 --database pg --json-out watch.json

Per database, against one served certcheck (one worker): the listings uploaded through
PUT /v1/watch/listings, and the same lines as one re-check job (the baseline: per line, an
upload should be as fast as a job); then the certificate they all carry is revoked by
`certcheck import` and the clock runs until every listing's event is readable through
GET /v1/watch/events.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import BenchError, certcheck_serve, cli, database_url, drop_database, served
from bench.recheck import through_job

_REGISTRY = 1_000  # certificates in the registry; the listings all carry one of them


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.watch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    kinds = ["sqlite", "pg"] if args.database == "both" else [args.database]
    results = []
    with tempfile.TemporaryDirectory(prefix="certcheck-bench-watch-") as scratch:
        for kind in kinds:
            workdir = Path(scratch) / kind
            workdir.mkdir()
            results.append(measure(kind, args.listings, workdir))
    print(_table(results))
    if args.json_out:
        meta = {"cpus": os.cpu_count(), "python": platform.python_version(), "commit": _commit()}
        args.json_out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


def measure(kind: str, listings: int, workdir: Path) -> dict[str, Any]:
    url = database_url("postgresql" if kind == "pg" else "sqlite", workdir, "watch")
    env = {"CERTCHECK_DATABASE_URL": url, "CERTCHECK_WATCH_POLL_INTERVAL": "0.2"}
    try:
        rows = _registry(env, workdir)
        target = next(r["cert_no"] for r in rows if r["status"] == "valid")
        key = cli(env, "keys", "create", "--platform", "bench", "--scope", "batch").strip()
        lines = workdir / "listings.ndjson"
        with lines.open("w", encoding="utf-8") as out:
            for i in range(listings):
                out.write(json.dumps({"listing_id": f"l{i}", "cert_no": target}) + "\n")
        with served(env, workdir, certcheck_serve("--workers", "1")) as server:
            upload = _upload(server.base, key, lines)
            job = through_job(server.base, key, lines, listings).seconds
            revoked = revoked_snapshot(rows, target, workdir / "revoked.csv.gz")
            started = time.perf_counter()
            cli(env, "import", str(revoked))
            imported = time.perf_counter() - started
            events = _wait_for_events(server.base, key, listings)
            produced = time.perf_counter() - started
    finally:
        drop_database(url)
    return {
        "database": kind,
        "listings": listings,
        "upload_s": round(upload, 2),
        "job_s": round(job, 2),
        "upload_vs_job": round(job / upload, 2),  # above 1: the upload is faster per line
        "import_s": round(imported, 2),
        "events_s": round(produced, 2),  # from the import's start to the last event readable
        "events": events,
    }


def _registry(env: dict[str, str], workdir: Path) -> list[dict[str, str]]:
    snapshot = workdir / "registry.csv.gz"
    cli(env, "db", "upgrade")
    cli(env, "demo-registry", str(snapshot), "--count", str(_REGISTRY))
    cli(env, "import", str(snapshot))
    with gzip.open(snapshot, "rt", encoding="utf-8", newline="") as rows:
        return list(csv.DictReader(rows))


def revoked_snapshot(rows: list[dict[str, str]], cert_no: str, path: Path) -> Path:
    """`rows` (a snapshot's CSV rows) written to `path` with `cert_no` revoked."""
    with gzip.open(path, "wt", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "status": "revoked"} if r["cert_no"] == cert_no else r for r in rows)
    return path


def _upload(base: str, key: str, lines: Path) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    started = time.perf_counter()
    with lines.open("rb") as body:
        answer = httpx.put(
            f"{base}/v1/watch/listings",
            content=iter(lambda: body.read(1 << 20), b""),
            headers=headers,
            timeout=3600,
        )
    seconds = time.perf_counter() - started
    if answer.status_code != 200:
        raise BenchError(f"the watch upload answered {answer.status_code}: {answer.text[:300]}")
    return seconds


def _wait_for_events(base: str, key: str, wanted: int) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    seen, since = 0, None
    deadline = time.monotonic() + 3600
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while seen < wanted:
            if time.monotonic() > deadline:
                raise BenchError(f"{seen:,} of {wanted:,} events after an hour")
            params = {"limit": "1000", **({"since": since} if since else {})}
            page = client.get("/v1/watch/events", params=params).raise_for_status().json()
            if not page["events"]:
                time.sleep(0.05)
                continue
            seen += len(page["events"])
            since = page["next"]
    return seen


def _table(results: list[dict[str, Any]]) -> str:
    head = f"{'database':<9}{'listings':>10}{'upload s':>10}{'job s':>8}{'upload/job':>12}"
    head += f"{'import s':>10}{'events s':>10}"
    rows = [
        f"{r['database']:<9}{r['listings']:>10,}{r['upload_s']:>10}{r['job_s']:>8}"
        f"{r['upload_vs_job']:>12}{r['import_s']:>10}{r['events_s']:>10}"
        for r in results
    ]
    return "\n".join([head, *rows])


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
