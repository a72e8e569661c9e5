"""Server memory with the certificate cache full: the scenario behind the RSS target.

A server (one worker) is sent batches asking for as many different certificates as its cache
holds (CERTCHECK_CACHE_SIZE, 200,000 by default; all of the registry if it is smaller), each
once, so every one is read from the database and kept. Its resident set is then what a worker
costs at its largest in steady state: the figure is VmRSS with the cache full, and the row's
RSS column the peak (VmHWM) while filling it.

Then the hot set is asked once more in one batch (so that it is cached too: the cache stays
full, its oldest entries make room), the check records of all that are left to be written,
and the same server answers the hot set open loop, at half the rate `verify-warm-pg` reached
in the round, as `latency-warm-pg` does with an empty cache: the row's p50 and p99. A full
cache is what a worker holds in production, and every object in it is one more for each full
pass of Python's cyclic garbage collector, which holds the event loop while it runs. Without
the wait, the figure measured the writing of the filling batches' 200,000 records and the hot
set's cache misses, not the full cache.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import BenchError, certcheck_serve, served
from bench.load import open_loop
from bench.measures import Figure, Measure
from bench.prepare import Workload
from bench.procstat import CpuWindow

_DEFAULT_CACHE_SIZE = 200_000  # config.py's default
# Entries must not expire while the cache fills (the default TTL is 60 s; a loaded machine
# takes longer than that to read 200,000 certificates).
_FILLING = {"CERTCHECK_CACHE_TTL": "3600"}
_BUFFERED = re.compile(r"^certcheck_check_records_buffered ([\d.e+]+)$", re.M)
_MISSES = re.compile(r'^certcheck_registry_cache_lookups_total\{result="miss"\} ([\d.e+]+)$', re.M)


def cache_full(db: str, rate_of: str) -> Measure:
    def measure(wl: Workload, this_round: dict[str, Figure]) -> Figure:
        registry = wl.registry(db)
        size = int(wl.settings.get("CERTCHECK_CACHE_SIZE", _DEFAULT_CACHE_SIZE))
        bodies = wl.distinct_batches(size)
        env = registry.env | _FILLING
        started = time.perf_counter()
        with served(env, wl.workdir, certcheck_serve("--workers", "1")) as svc:
            window = CpuWindow(svc.pid)
            window.start()
            asked = _fill(svc.base, registry.key, bodies)
            window.stop()
            seconds = round(time.perf_counter() - started, 1)
            misses = _cache_misses(svc.base)
            rss = _current_rss_mib(svc.pid)
            _fill(svc.base, registry.key, wl.bodies("batch-warm"))
            drained = _records_written(svc.base)
            rate = this_round[rate_of].value / 2
            headers = {"Authorization": f"Bearer {registry.key}"}
            url, hot = f"{svc.base}/v1/verify", wl.bodies("hot")
            load = open_loop(url, hot, rate=rate, seconds=wl.sizes.seconds, headers=headers)
        if misses < asked:
            raise BenchError(f"{asked} certificates asked, but only {misses} read and cached")
        detail: dict[str, Any] = {
            "cache_size": size,
            "certificates": asked,
            "fill_seconds": seconds,
            "records_drained_seconds": drained,
            "loop": "open",
            "target_rate": rate,
            **load.detail,
        }
        return Figure(
            rss,
            p50_ms=load.p50_ms,
            p99_ms=load.p99_ms,
            server_cpu=window.cores,
            rss_mib=window.peak_rss_mib,
            detail=detail,
        )

    return measure


def _fill(base: str, key: str, bodies: Path) -> int:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    asked = 0
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        for body in bodies.read_bytes().splitlines():
            if body:
                client.post("/v1/verify/batch", content=body).raise_for_status()
                asked += body.count(b'"cert_no"')
    return asked


def _records_written(base: str, *, within: float = 600.0) -> float:
    """Seconds until the server holds no check record unwritten."""
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        if not _metric(base, _BUFFERED):
            return round(time.perf_counter() - started, 1)
        time.sleep(0.5)
    raise BenchError(f"check records still unwritten {within:.0f} s after the cache was filled")


def _cache_misses(base: str) -> int:
    return int(_metric(base, _MISSES))


def _metric(base: str, sample: re.Pattern[str]) -> float:
    """The value of one sample of the server's /metrics (0 when it is not exposed yet)."""
    text = httpx.get(f"{base}/metrics", timeout=30).raise_for_status().text
    found = sample.search(text)
    return float(found.group(1)) if found else 0.0


def _current_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError("no VmRSS in /proc: memory needs Linux")
