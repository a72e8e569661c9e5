"""A closed-loop client for POST /v1/verify/batch: a fixed number of batches over two
keep-alive connections, each sending its next batch once the last one is answered.

    python -m bench.batchload --url URL --bodies FILE --requests 20 --header "Authorization: ..."

A fixed amount of work rather than a fixed time: a batch takes about a second, and a timed
run (wrk) would drop the batches still in flight at its end. It prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import httpx

_CONNECTIONS = 2  # one batch in the server while the other's answer travels


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="one batch body per line")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    bodies = [line for line in args.bodies.read_bytes().splitlines() if line]
    sizes = [body.count(b'"cert_no"') for body in bodies]
    headers = dict(h.split(": ", 1) for h in args.header) | {"Content-Type": "application/json"}
    latencies: list[float] = []
    failures: list[str] = []
    items = [0]
    todo = iter(range(args.requests))
    lock = threading.Lock()

    def connection() -> None:
        with httpx.Client(headers=headers, timeout=300) as client:
            while True:
                with lock:
                    k = next(todo, None)
                if k is None:
                    return
                sent = time.perf_counter()
                response = client.post(args.url, content=bodies[k % len(bodies)])
                if response.status_code != 200:  # say why: a problem document's code
                    failures.append(f"{response.status_code} {response.text[:300]}")
                    return
                with lock:
                    latencies.append(time.perf_counter() - sent)
                    items[0] += sizes[k % len(bodies)]

    started = time.perf_counter()
    threads = [threading.Thread(target=connection) for _ in range(_CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures or len(latencies) != args.requests:
        raise SystemExit(f"{len(failures)} batches failed, the first: {failures[:1]}")
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "items": items[0],
                "seconds": seconds,
                "p50_ms": _percentile(latencies, 0.5) * 1000,
                "p99_ms": _percentile(latencies, 0.99) * 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
