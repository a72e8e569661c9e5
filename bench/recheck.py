"""The two ways to re-check a file of listings, timed end to end against a served certcheck:
batches of 10,000 through POST /v1/verify/batch one after the other (the baseline), and one
re-check job (upload, processing, results download)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import BenchError
from bench.recheck_workload import batches

_SUMMARY = re.compile(rb'"summary":\{"allow":(\d+),"block":(\d+),"review":(\d+)\}\}\s*$')


@dataclass(frozen=True, slots=True)
class Rechecked:
    seconds: float
    counts: tuple[int, int, int]  # allow, block, review: both paths must agree
    phases: dict[str, float] = field(default_factory=dict)


def through_batches(base: str, key: str, listings: Path, size: int) -> Rechecked:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    counts = [0, 0, 0]
    retries = 0
    started = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        for body in batches(listings, size):
            for attempt in range(_ATTEMPTS):
                response = client.post("/v1/verify/batch", content=body)
                wait = _retry_after(response)
                if wait is None or attempt == _ATTEMPTS - 1:
                    break
                retries += 1
                time.sleep(wait)
            response.raise_for_status()
            summary = _SUMMARY.search(response.content)
            assert summary is not None, "no summary at the end of a batch response"
            counts = [c + int(n) for c, n in zip(counts, summary.groups(), strict=True)]
    seconds = time.perf_counter() - started
    return Rechecked(seconds, (counts[0], counts[1], counts[2]), {"retries": retries})


# A platform's client retries a 503 after its Retry-After; so does this one. The first batch
# after a server starts can outlast the registry deadline while the database's pages are cold
# (bench/README.md, "The full run"): the retry's wait is counted in the path's time.
_ATTEMPTS = 5


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code != 503:
        return None
    given = response.headers.get("retry-after", "")
    return float(given) if given.isdigit() else None


def through_job(base: str, key: str, listings: Path, lines: int) -> Rechecked:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    phases: dict[str, float] = {}
    started = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        with listings.open("rb") as body:
            created = client.post("/v1/recheck-jobs", content=iter(lambda: body.read(1 << 20), b""))
        created.raise_for_status()
        location = created.headers["location"]
        phases["upload"] = time.perf_counter() - started
        job = _wait_done(client, location)
        phases["processing"] = time.perf_counter() - started - phases["upload"]
        received = _download(client, location + "/results")
        phases["download"] = time.perf_counter() - started - sum(phases.values())
    seconds = time.perf_counter() - started
    if not received == lines == job["total"]:
        raise BenchError(f"the job answered {received} of {lines} lines ({job['total']} taken)")
    allow, block, review = (job["counts"][d] for d in ("allow", "block", "review"))
    return Rechecked(seconds, (allow, block, review), phases)


def _wait_done(client: httpx.Client, location: str) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = client.get(location).raise_for_status().json()
        if job["status"] == "done":
            return job
        if job["status"] not in ("queued", "running"):
            raise BenchError(f"the job ended {job['status']}: {job['error']}")
        time.sleep(0.1)


def _download(client: httpx.Client, url: str) -> int:
    received = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for block in response.iter_bytes():
            received += block.count(b"\n")
    return received
