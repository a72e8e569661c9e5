"""An open-loop load generator: requests leave on a fixed schedule, whatever has come back.

    python -m bench.openloop --url http://127.0.0.1:8000/v1/verify --rate 1000 --seconds 10 \
        --bodies bodies.txt --header "Authorization: Bearer ..."

Request k is due at start + k / rate. Each of `--connections` keep-alive connections takes the
next due request, waits for its time if it is early, sends it and reads the answer; latency is
measured from the time it was DUE, not from when it left, so a server that stalls is charged
for every request it delayed (no coordinated omission, as wrk2 does). If every connection is
busy, due requests wait, and that wait is part of their latency. It prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

_DRAIN_SECONDS = 10.0  # how long requests still in flight at the end may take


class _Run:
    def __init__(self, requests: list[bytes], rate: float, seconds: float) -> None:
        self.requests, self.rate = requests, rate
        self.total = int(rate * seconds)
        self.next = itertools.count()
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.backlogged = 0
        self.errors = 0
        self.start = 0.0


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        await reader.readexactly(size + 2)
    await reader.readuntil(b"\r\n")
    return status


async def _connection(run: _Run, host: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (k := next(run.next)) < run.total:
            due = run.start + k / run.rate
            if (early := due - time.perf_counter()) > 0:
                await asyncio.sleep(early)
                # Lateness of an idle connection waking up: the generator's own, not the server's.
                run.lags.append(time.perf_counter() - due)
            else:
                run.backlogged += 1  # every connection was busy when it fell due
            writer.write(run.requests[k % len(run.requests)])
            try:
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError):
                run.errors += 1
                return
            run.latencies.append(time.perf_counter() - due)
            if not 200 <= status < 300:
                run.errors += 1
    finally:
        writer.close()


def _requests(url: str, bodies: Path, headers: list[str]) -> tuple[str, int, list[bytes]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    extra = "".join(f"{h}\r\n" for h in headers)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\n{extra}"
    )
    requests = [
        f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        for body in bodies.read_bytes().splitlines()
        if body
    ]
    return host, port, requests


async def _main(args: argparse.Namespace) -> dict[str, float]:
    host, port, requests = _requests(args.url, args.bodies, args.header)
    run = _Run(requests, args.rate, args.seconds)
    run.start = time.perf_counter() + 0.2  # time to open the connections first
    tasks = [asyncio.create_task(_connection(run, host, port)) for _ in range(args.connections)]
    done, pending = await asyncio.wait(tasks, timeout=args.seconds + 0.2 + _DRAIN_SECONDS)
    for task in pending:
        task.cancel()
    failed = sum(1 for task in done if task.exception() is not None)
    elapsed = time.perf_counter() - run.start
    missing = run.total - len(run.latencies)  # never answered in time, or never sent
    return {
        "rate": args.rate,
        "scheduled": run.total,
        "completed": len(run.latencies),
        "errors": run.errors + max(missing, 0) + failed,
        "achieved_rate": len(run.latencies) / elapsed,
        "p50_ms": _percentile(run.latencies, 0.50) * 1000,
        "p99_ms": _percentile(run.latencies, 0.99) * 1000,
        "p999_ms": _percentile(run.latencies, 0.999) * 1000,
        "max_ms": max(run.latencies, default=0.0) * 1000,
        "send_lag_p99_ms": _percentile(run.lags, 0.99) * 1000,
        "backlogged": run.backlogged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--bodies", type=Path, required=True, help="one JSON body per line")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    import uvloop  # uvicorn[standard] brings it; the generator must be as quick as it can

    print(json.dumps(uvloop.run(_main(args))))


if __name__ == "__main__":
    main()
