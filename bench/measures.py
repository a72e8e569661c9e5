"""How each kind of scenario is measured. Every measurement starts its own server process (so
each figure has its own CPU and peak RSS), warms it up, then measures one load."""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench._common import BenchError, Served, certcheck_serve, python_env, served, uvicorn_app
from bench.load import Load, batch_load, open_loop, wrk
from bench.prepare import Workload
from bench.procstat import CpuWindow, run_measured
from bench.recheck import Rechecked, through_batches, through_job

_CONNECTIONS = 32  # wrk's, for every closed-loop rate


@dataclass
class Figure:
    value: float  # in the scenario's unit
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu: float | None = None  # cores: 1.0 is one core busy all the time
    generator_cpu: float | None = None
    rss_mib: float | None = None  # peak RSS of the largest server process (per worker)
    detail: dict[str, Any] = field(default_factory=dict)


# A measurement gets the workload and the figures of the current round so far.
Measure = Callable[[Workload, dict[str, Figure]], Figure]


@contextlib.contextmanager
def _server(
    wl: Workload, app: str, db: str | None, workers: int, settings: dict[str, str] | None = None
) -> Iterator[Served]:
    if app == "bare":
        with served({}, wl.workdir, uvicorn_app("bench.baselines.bare_asgi:app"), "/") as svc:
            yield svc
        return
    assert db is not None
    registry = wl.registry(db)
    if app == "naive":
        env = {"CERTCHECK_DATABASE_URL": registry.env["CERTCHECK_DATABASE_URL"]}
        with served(env, wl.workdir, uvicorn_app("bench.baselines.naive_orm:app"), "/docs") as svc:
            yield svc
        return
    env = registry.env | (settings or {})
    with served(env, wl.workdir, certcheck_serve("--workers", str(workers))) as svc:
        yield svc


def _headers(wl: Workload, db: str | None) -> dict[str, str]:
    # Every app gets the same header, whether it reads it or not: the same bytes on the wire.
    key = wl.registry(db).key if db is not None else "x" * 43
    return {"Authorization": f"Bearer {key}"}


def _figure(load: Load, window: CpuWindow, detail: dict[str, Any]) -> Figure:
    return Figure(
        value=load.rate,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        server_cpu=window.cores,
        generator_cpu=load.cpu_cores,
        rss_mib=window.peak_rss_mib,
        detail=detail,
    )


def _prime(wl: Workload, svc: Served, db: str, workers: int) -> None:
    """Fill the cache with the hot set: one batch per worker and one more, each on a new
    connection, so that every worker (the kernel spreads connections) is likely to get one."""
    body = wl.bodies("batch-warm").read_bytes().strip()
    headers = _headers(wl, db) | {"Content-Type": "application/json"}
    for _ in range(workers + 1 if workers > 1 else 1):
        url = f"{svc.base}/v1/verify/batch"
        httpx.post(url, content=body, headers=headers, timeout=300).raise_for_status()


def closed(
    app: str, db: str | None, bodies: str, workers: int = 1, settings: dict[str, str] | None = None
) -> Measure:
    """Throughput (req/s) under wrk's closed loop: 32 connections, one thread; `settings`:
    CERTCHECK_ settings for this scenario's server only."""

    def measure(wl: Workload, _round: dict[str, Figure]) -> Figure:
        with _server(wl, app, db, workers, settings) as svc:
            if app == "certcheck" and bodies == "hot" and db is not None:
                _prime(wl, svc, db, workers)
            url, path, headers = f"{svc.base}/v1/verify", wl.bodies(bodies), _headers(wl, db)
            run: dict[str, Any] = {"connections": _CONNECTIONS, "headers": headers}
            wrk(url, path, wl.workdir, seconds=wl.sizes.warmup, **run)
            window = CpuWindow(svc.pid)
            window.start()
            load = wrk(url, path, wl.workdir, seconds=wl.sizes.seconds, **run)
            window.stop()
        detail = {"loop": "closed", "connections": _CONNECTIONS, **load.detail}
        return _figure(load, window, detail)

    return measure


def latency(source: str, db: str, bodies: str) -> Measure:
    """Latency at half the rate `source` reached in this round, open loop (bench.openloop)."""

    def measure(wl: Workload, this_round: dict[str, Figure]) -> Figure:
        rate = this_round[source].value / 2
        with _server(wl, "certcheck", db, 1) as svc:
            if bodies == "hot":
                _prime(wl, svc, db, 1)
            url, path, headers = f"{svc.base}/v1/verify", wl.bodies(bodies), _headers(wl, db)
            wrk(url, path, wl.workdir, seconds=wl.sizes.warmup, connections=8, headers=headers)
            window = CpuWindow(svc.pid)
            window.start()
            load = open_loop(url, path, rate=rate, seconds=wl.sizes.seconds, headers=headers)
            window.stop()
        detail = {"loop": "open", "target_rate": rate, **load.detail}
        return _figure(load, window, detail)

    return measure


def batch(db: str, bodies: str) -> Measure:
    """Items per second through POST /v1/verify/batch, 10,000 items a request."""

    def measure(wl: Workload, _round: dict[str, Figure]) -> Figure:
        with _server(wl, "certcheck", db, 1) as svc:
            _prime(wl, svc, db, 1)  # warm: the hot set; cold: warms the code, not its numbers
            url, headers = f"{svc.base}/v1/verify/batch", _headers(wl, db)
            window = CpuWindow(svc.pid)
            window.start()
            load = batch_load(
                url, wl.bodies(bodies), requests=wl.sizes.batch_requests, headers=headers
            )
            window.stop()
        return _figure(load, window, {"loop": "closed", **load.detail})

    return measure


def load_registry(db: str, loader: str) -> Measure:
    """Seconds to load the snapshot into a new, migrated, empty database."""

    def measure(wl: Workload, _round: dict[str, Figure]) -> Figure:
        url = wl.scratch_database(db, f"import_{db}")
        if loader == "certcheck":
            command = [sys.executable, "-m", "certcheck", "import", str(wl.snapshot())]
        else:
            command = [sys.executable, "-m", "bench.baselines.plain_loader"]
            command += [str(wl.snapshot()), url]
        try:
            done = run_measured(command, python_env(wl.env(url)))
        finally:
            wl.drop(url)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command[1:])} failed:\n{done.stderr}")
        detail = {"cpu_seconds": done.cpu_seconds, "certificates": wl.sizes.certificates}
        return Figure(
            done.seconds, server_cpu=done.cpu_cores, rss_mib=done.peak_rss_mib, detail=detail
        )

    return measure


def recheck(
    db: str, path: str, other: str, settings: dict[str, str] | None = None, workers: int = 1
) -> Measure:
    """Seconds for the listings through a job or through batches; `other` must agree.
    `workers`: serving processes, each with its job workers (`serve`'s default is one a core)."""

    def measure(wl: Workload, this_round: dict[str, Figure]) -> Figure:
        registry, listings = wl.registry(db), wl.listings()
        # The batch path's server runs no job workers: it only answers the batches.
        env = registry.env | ({"CERTCHECK_JOB_WORKERS": "0"} if path == "batch" else {})
        env |= settings or {}
        client = resource.getrusage(resource.RUSAGE_SELF)  # the client runs in this process
        wall = time.perf_counter()
        # One process unless said, as every other figure here (`serve` alone starts one a core).
        with served(env, wl.workdir, certcheck_serve("--workers", str(workers))) as svc:
            window = CpuWindow(svc.pid)
            window.start()
            done: Rechecked = (
                through_job(svc.base, registry.key, listings, wl.sizes.recheck_lines)
                if path == "job"
                else through_batches(svc.base, registry.key, listings, wl.sizes.batch_items)
            )
            window.stop()
        after = resource.getrusage(resource.RUSAGE_SELF)
        used = after.ru_utime - client.ru_utime + after.ru_stime - client.ru_stime
        counts = list(done.counts)
        if other in this_round and this_round[other].detail["counts"] != counts:
            raise BenchError(f"{path} and {other} disagree: {counts} and {this_round[other]}")
        detail = {"lines": wl.sizes.recheck_lines, "counts": counts, **done.phases}
        return Figure(
            done.seconds,
            server_cpu=window.cores,
            generator_cpu=used / (time.perf_counter() - wall),
            rss_mib=window.peak_rss_mib,
            detail=detail,
        )

    return measure


def same_as(source: str) -> Measure:
    """The figure `source` measured in this round, again: a row of its own for a second
    ratio (the same figure against another baseline) without measuring it twice."""

    def measure(_wl: Workload, this_round: dict[str, Figure]) -> Figure:
        figure = this_round[source]
        return dataclasses.replace(figure, detail={**figure.detail, "same_as": source})

    return measure
