"""The app's own CPU per cache-warm verify, without a server: ASGI calls in a loop.

    python -m bench.inproc [--database sqlite|postgresql] [--requests 10000] [--profile]
    python -m bench.inproc --batch 10000 [--requests 5] ...

The throughput scenarios measure the whole stack under a load generator on the same 2 cores,
and on a shared machine their figures move by a third from one run to the next. This one
calls the app (its lifespan running, as uvicorn runs it) with the hot set's verify requests,
one after another, and divides the process's CPU time by the requests: what a change to the
request path buys shows here when the load tests cannot see it. Check records are flushed as
served (every CERTCHECK_CHECK_FLUSH_SECONDS) and once more before each round ends, so a round
with records on pays for their writing too (on SQLite that includes the database's own work,
which runs in this process).

It prints, per database, microseconds of CPU per verify with records off and on (the least of
`--rounds` rounds, interleaved) and their ratio; `--profile` adds cProfile's top functions of
one more round with records on. `--batch N` sends `POST /v1/verify/batch` requests of N items
instead (the hot set's, over and over) and prints microseconds of CPU per item. `--hot N`
sets the hot set's size (2,000 by default, the quick workload's): a batch of 10,000 items
then repeats each number five times, and a number looked up once for all its items costs a
batch less than the served `batch-warm` scenario's 10,000 different numbers (`--hot 10000`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager

from bench.prepare import QUICK, Registry, Workload
from certcheck.serving import SWITCH_INTERVAL as _SWITCH_INTERVAL

Verify = Callable[[bytes], Awaitable[int]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--requests", type=int, default=10_000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--batch", type=int, metavar="N", help="items a batch request")
    parser.add_argument("--hot", type=int, default=QUICK.hot, help="numbers of the hot set")
    args = parser.parse_args(argv)
    log_to_nowhere()
    for kind, registry, bodies in registries("certcheck-inproc-", args.database, args.hot):
        if args.batch:
            items = [bodies[i % len(bodies)] for i in range(args.batch)]
            bodies = [b'{"items":[' + b",".join(items) + b"]}"]
        figures = asyncio.run(_measure(registry.env, registry.key, bodies, args))
        off, on = min(figures["off"]), min(figures["on"])
        unit = "us an item" if args.batch else "us"
        print(
            f"{kind:10}  ({unit})  records off {off:6.1f} us  on {on:6.1f} us  "
            f"off/on {off / on:.2f}  (rounds off {_fmt(figures['off'])}, "
            f"on {_fmt(figures['on'])})"
        )
    return 0


def registries(
    prefix: str, kinds: list[str] | None, hot: int = QUICK.hot
) -> Iterator[tuple[str, Registry, list[bytes]]]:
    """The quick workload's registry on each database of `kinds` (default both), with the
    verify bodies of a hot set of `hot` numbers: what this command and bench.flush call the app
    with."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workload = Workload(Path(tmp), dataclasses.replace(QUICK, hot=hot), {}, None)
        try:
            bodies = [
                line for line in workload.bodies("hot").read_bytes().splitlines() if line.strip()
            ]
            for kind in kinds or ["sqlite", "postgresql"]:
                yield kind, workload.registry(kind), bodies
        finally:
            workload.close()


def log_to_nowhere() -> None:
    """The request log line is part of a request's cost: made and written as when served, to
    nowhere (the handler takes the stream sys.stderr is when logging is configured)."""
    from certcheck.observability.logs import configure_logging

    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115 - for the process
    try:
        configure_logging("INFO")
    finally:
        sys.stderr = stderr


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.1f}" for v in values)


async def _measure(
    env: dict[str, str], key: str, bodies: list[bytes], args: argparse.Namespace
) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"off": [], "on": []}
    os.environ.update(env)
    # Imported here: Settings reads the environment set just above.
    from certcheck.app import create_app
    from certcheck.config import Settings

    apps = {records: create_app(Settings(check_records=records == "on")) for records in figures}
    # As a served worker is set up (serving.served_app).
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(_SWITCH_INTERVAL)
    async with LifespanManager(apps["off"]) as off, LifespanManager(apps["on"]) as on:
        managers = {"off": off, "on": on}
        path = "/v1/verify/batch" if args.batch else "/v1/verify"
        verifiers = {name: verifier(m.app, key, path) for name, m in managers.items()}
        per_request = args.batch or 1
        for verify in verifiers.values():
            for body in bodies:  # the hot set into the cache (and the key into its cache)
                status = await verify(body)
                if status != 200:
                    raise SystemExit(f"verify answered {status}: is the registry loaded?")
        for _ in range(args.rounds):
            for name, verify in verifiers.items():
                started = time.process_time()
                for i in range(args.requests):
                    await verify(bodies[i % len(bodies)])
                await _flushed(managers[name])
                spent = time.process_time() - started
                figures[name].append(spent / (args.requests * per_request) * 1e6)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for i in range(args.requests):
                await verifiers["on"](bodies[i % len(bodies)])
            await _flushed(managers["on"])
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    return figures


async def _flushed(manager: LifespanManager) -> None:
    state: dict[str, Any] = manager._state  # the lifespan's state, as every request sees it
    await state["evidence"].recorder.flush()


def verifier(app: Any, key: str, path: str = "/v1/verify") -> Verify:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
    ]

    async def verify(body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [*headers, (b"content-length", b"%d" % len(body))],
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status = 0

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    return verify


if __name__ == "__main__":
    raise SystemExit(main())
