"""Re-check jobs end to end against the batch endpoint, on a real `certcheck serve` process.

    .venv/bin/python bench/recheck_bench.py --database sqlite --lines 1000000
    .venv/bin/python bench/recheck_bench.py --database postgresql --lines 1000000

The same listings go through POST /v1/verify/batch in 10,000-item requests (the baseline) and
through one re-check job (upload, processing, results download). Each path gets a fresh server
process, so each reports its own peak RSS. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

if __package__ is None:  # run as a script: make `bench` importable from the repository
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Served, cli, database_url, drop_database, served
from bench.recheck_workload import batches, gzip_file, registry_numbers, write_listings

_SUMMARY = re.compile(rb'"summary":\{"allow":(\d+),"block":(\d+),"review":(\d+)\}\}\s*$')


@dataclass(frozen=True, slots=True)
class Measured:
    path: str
    lines: int
    seconds: float
    peak_rss_mb: float
    counts: tuple[int, int, int]  # allow, block, review
    phases: dict[str, float]

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds


def main() -> int:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="certcheck-bench-") as tmp:
        work = Path(tmp)
        url = database_url(args.database, work)
        try:
            env = _environment(url, args.setting)
            key, listings = _prepare(env, work, args)
            upload = gzip_file(listings) if args.gzip else listings
            # The baseline's server runs no job workers: it only answers the batches.
            with served({**env, "CERTCHECK_JOB_WORKERS": "0"}, work) as svc:
                baseline = _baseline(svc, key, listings, args.lines, args.batch)
            with served(env, work) as svc:
                job = _job(svc, key, upload, args.lines, gzipped=args.gzip)
        finally:
            drop_database(url)
    _report(args, baseline, job)
    return 0 if job.counts == baseline.counts else 1


def _environment(url: str, settings: list[tuple[str, str]]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTCHECK_")}
    env["CERTCHECK_DATABASE_URL"] = url
    env.update({f"CERTCHECK_{name.upper()}": value for name, value in settings})
    return env


def _peak_rss_mib(pid: int) -> float:
    """The process's resident-set high-water mark (VmHWM): exact, where sampling can miss."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: peak RSS needs Linux")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--certificates", type=int, default=100_000, help="registry size")
    parser.add_argument("--batch", type=int, default=10_000, help="items per batch request")
    parser.add_argument("--gzip", action="store_true", help="upload the job gzip-compressed")
    parser.add_argument(
        "--setting",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a CERTCHECK_ setting for the server, e.g. --setting job_chunk_lines 10000",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args()


def _prepare(env: dict[str, str], work: Path, args: argparse.Namespace) -> tuple[str, Path]:
    started = time.perf_counter()
    snapshot = work / "registry.csv.gz"
    cli(env, "db", "upgrade")
    cli(env, "demo-registry", str(snapshot), "--count", str(args.certificates))
    cli(env, "import", str(snapshot))
    key = cli(env, "keys", "create", "--platform", "bench", "--scope", "batch").strip()
    listings = work / "listings.ndjson"
    write_listings(listings, args.lines, registry_numbers(snapshot))
    _note(f"prepared {args.certificates:,} certificates and {args.lines:,} listings", started)
    return key, listings


def _baseline(svc: Served, key: str, listings: Path, lines: int, size: int) -> Measured:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    counts = [0, 0, 0]
    started = time.perf_counter()
    with httpx.Client(base_url=svc.base, headers=headers, timeout=600) as client:
        for body in batches(listings, size):
            response = client.post("/v1/verify/batch", content=body)
            response.raise_for_status()
            summary = _SUMMARY.search(response.content)
            assert summary is not None, "no summary at the end of a batch response"
            counts = [c + int(n) for c, n in zip(counts, summary.groups(), strict=True)]
    seconds = time.perf_counter() - started
    _note(f"baseline: {lines:,} lines through /v1/verify/batch", started)
    return Measured("batch endpoint", lines, seconds, _peak_rss_mib(svc.pid), _three(counts), {})


def _job(svc: Served, key: str, upload: Path, lines: int, *, gzipped: bool) -> Measured:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    phases: dict[str, float] = {}
    started = time.perf_counter()
    with httpx.Client(base_url=svc.base, headers=headers, timeout=600) as client:
        with upload.open("rb") as body:
            created = client.post("/v1/recheck-jobs", content=iter(lambda: body.read(1 << 20), b""))
        created.raise_for_status()
        location = created.headers["location"]
        phases["upload"] = time.perf_counter() - started
        job = _wait_done(client, location)
        phases["processing"] = time.perf_counter() - started - phases["upload"]
        received = _download(client, location + "/results")
        phases["download"] = time.perf_counter() - started - phases["upload"] - phases["processing"]
    seconds = time.perf_counter() - started
    assert received == lines == job["total"], (received, lines, job["total"])
    _note(f"job: {lines:,} lines uploaded, processed and downloaded", started)
    counts = _three([job["counts"][d] for d in ("allow", "block", "review")])
    return Measured("re-check job", lines, seconds, _peak_rss_mib(svc.pid), counts, phases)


def _wait_done(client: httpx.Client, location: str) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = client.get(location).raise_for_status().json()
        if job["status"] == "done":
            return job
        if job["status"] != "queued" and job["status"] != "running":
            raise RuntimeError(f"the job ended {job['status']}: {job['error']}")
        time.sleep(0.1)


def _download(client: httpx.Client, url: str) -> int:
    received = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for block in response.iter_bytes():
            received += block.count(b"\n")
    return received


def _three(counts: list[int]) -> tuple[int, int, int]:
    return counts[0], counts[1], counts[2]


def _note(what: str, started: float) -> None:
    print(f"{what}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def _report(args: argparse.Namespace, baseline: Measured, job: Measured) -> None:
    if args.json:
        rows = [asdict(m) | {"lines_per_second": m.lines_per_second} for m in (baseline, job)]
        print(json.dumps({"database": args.database, "gzip": args.gzip, "paths": rows}))
        return
    print(f"\n{args.database}, {args.lines:,} lines, {args.certificates:,} certificates")
    print(f"{'path':<16}{'seconds':>9}{'lines/s':>11}{'peak RSS MiB':>14}")
    for m in (baseline, job):
        print(f"{m.path:<16}{m.seconds:>9.1f}{m.lines_per_second:>11,.0f}{m.peak_rss_mb:>14.0f}")
    print("job phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in job.phases.items()))
    print(f"job / baseline speed: {job.lines_per_second / baseline.lines_per_second:.2f}")
    same = "same" if job.counts == baseline.counts else f"DIFFERENT: {job.counts}"
    print(f"decisions (allow, block, review): {baseline.counts}; job: {same}")


if __name__ == "__main__":
    sys.exit(main())
