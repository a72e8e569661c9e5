"""Instructions per cache-warm verify, counted by Valgrind: the same figure on a busy machine.

    python -m bench.instructions [--database sqlite|postgresql] [--requests 2000] [--rounds 2]
    python -m bench.instructions --batch 10000 --requests 2 ...

bench.inproc divides CPU time by requests, and on a shared machine its rounds spread by a
third or more: a change worth a few percent cannot be told from the noise. This command runs
the same loop (the quick workload's registry, the app's lifespan, the hot set's verify
requests, the request log written to nowhere, the records' buffer flushed at the end) in a
process under `valgrind --tool=callgrind`, with Valgrind's instrumentation switched on only
around the measured requests, and divides the instructions counted by the requests. Start-up
and warm-up run uninstrumented, so a child takes ~20 s. What other processes do is not counted
(PostgreSQL's own work is not in the figure; SQLite's, in this process, is).

It prints, per database, instructions per verify (per item with `--batch`) with records off,
with records on and the flush's per record, each child's figure, and the ratio of off to on
with the flush. The flush interval is an hour, so that the number of
flushes (one, at the end) does not depend on how slow Valgrind makes the process; the hash seed
is fixed. Rounds of one build agree within about a percent; compare builds by running this
command in each. `--keep DIR` keeps the callgrind files, for `callgrind_annotate --inclusive=yes`
(the compiled modules' functions show by name, as `CPyDef_<module>___<function>`).

What runs by the clock still differs from a served process: under Valgrind a verify takes
milliseconds, so nearly every id starts a new millisecond and is encoded whole (ids.py), where a
busy server mostly changes an id's last two characters. A change to such a path is timed
with timeit, not judged here.

`--served` counts the request path as served instead: `certcheck serve --workers 1` (records
off, so that no flush runs by the clock) and `bare` (the benchmark's bare ASGI app on uvicorn)
each run under callgrind, instrumented from `callgrind_control -i on` to `callgrind_control -d`
while a client outside Valgrind sends them the same verify requests one at a time on one
kept-alive connection. What uvicorn does for a request is counted here and not by the loop
above. What a server does by the clock (uvicorn's tick, the log thread) is counted for a few
seconds with nothing to answer, and that rate times the requests' time is taken off their
count: on a busy machine the requests take longer, and this part grew with them (two rounds
of one build 4 % apart before). The kernel's share of a request (a send, a read) is never
counted.

Needs valgrind, its headers (`valgrind/callgrind.h`) and a C compiler: the instrumentation is
switched by Valgrind's client requests, compiled into a small library at the start.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import http.client
import json
import os
import re
import shutil
import subprocess  # nosec B404 - runs valgrind and the C compiler
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager

from bench._common import Served, certcheck_serve, served, uvicorn_app
from bench.inproc import log_to_nowhere, registries, verifier
from bench.prepare import QUICK, Registry
from certcheck.observability import logs
from certcheck.serving import SWITCH_INTERVAL

_SWITCH = """#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_START_INSTRUMENTATION; }
void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void dump(void) { CALLGRIND_DUMP_STATS; }
"""
_CHILD = "CERTCHECK_BENCH_INSTRUCTIONS"  # the child's instructions, as JSON
# What runs by the clock would run fifty times as often against the requests as when served,
# and by chance: no job workers, watch processor or webhook deliveries (their polls opened
# pooled connections in the counted window), and both caches' TTLs an hour (else the hot set
# expires, or its key is read again, mid-count). Settings, for the child and as the served
# server's environment.
_QUIET: dict[str, Any] = {
    "job_workers": 0,
    "watch_processor": False,
    "webhook_deliveries": 0,
    "cache_ttl": 3600.0,
    "key_cache_ttl": 3600.0,
}


def main(argv: list[str] | None = None) -> int:
    if _CHILD in os.environ:
        return _child(json.loads(os.environ[_CHILD]))
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--requests", type=int, default=2_000, help="counted, per child")
    parser.add_argument("--rounds", type=int, default=2, help="children per figure")
    parser.add_argument("--batch", type=int, metavar="N", help="items a batch request")
    parser.add_argument("--hot", type=int, default=QUICK.hot, help="numbers of the hot set")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep callgrind's files here")
    parser.add_argument("--served", action="store_true", help="count served requests, and bare's")
    args = parser.parse_args(argv)
    if args.served and args.batch:
        parser.error("--served counts single verify requests: without --batch")
    needed = ("valgrind",) if args.served else ("valgrind", "cc")
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"needs {' and '.join(missing)} (Debian: apt-get install valgrind gcc)")
    with tempfile.TemporaryDirectory(prefix="certcheck-instructions-") as tmp:
        work = Path(tmp)
        switch = None if args.served else _compiled_switch(work)
        out_dir = args.keep or work
        out_dir.mkdir(parents=True, exist_ok=True)
        made = registries("certcheck-instructions-", args.database, args.hot)
        for kind, registry, bodies in made:
            if args.batch:
                items = [bodies[i % len(bodies)] for i in range(args.batch)]
                bodies = [b'{"items":[' + b",".join(items) + b"]}"]
            if args.served:
                line = _served_line(
                    kind, registry, bodies, work, out_dir, args.rounds, args.requests
                )
                print(line)
                continue
            bodies_file = work / "bodies"
            bodies_file.write_bytes(b"\n".join(bodies))
            counts: dict[str, list[tuple[int, int]]] = {"off": [], "on": []}
            for round_ in range(args.rounds):
                for records, rounds in counts.items():
                    plan = {
                        "env": registry.env,
                        "key": registry.key,
                        "bodies": str(bodies_file),
                        "records": records == "on",
                        "requests": args.requests,
                        "path": "/v1/verify/batch" if args.batch else "/v1/verify",
                        "switch": str(switch),
                    }
                    rounds.append(_counted(plan, out_dir / f"callgrind.{kind}.{records}.{round_}"))
            print(_line(kind, counts, args.requests * (args.batch or 1), args.batch is not None))
    return 0


def _line(kind: str, counts: dict[str, list[tuple[int, int]]], items: int, batch: bool) -> str:
    """Per item: the requests with records off and on, the flush of their records, and the
    ratio of off to on with the flush; the least of the rounds, then each round."""
    off = [(requests + flush) / items for requests, flush in counts["off"]]
    on = [requests / items for requests, _ in counts["on"]]
    flush = [flush / items for _, flush in counts["on"]]
    total = min(r + f for r, f in zip(on, flush, strict=True))
    unit = "an item" if batch else "a verify"
    return (
        f"{kind:10}  instructions {unit}: records off {min(off):,.0f}; on {min(on):,.0f} "
        f"+ flush {min(flush):,.0f} a record = {total:,.0f}; off/on {min(off) / total:.3f}  "
        f"(rounds: off {_fmt(off)}; on {_fmt(on)}; flush {_fmt(flush)})"
    )


def _served_line(
    kind: str,
    registry: Registry,
    bodies: list[bytes],
    work: Path,
    out: Path,
    rounds: int,
    requests: int,
) -> str:
    """Instructions a served verify costs certcheck (records off) and bare, least of rounds."""
    settings = {
        **_QUIET,
        "check_records": False,  # no flush by the clock
        "shutdown_drain": 0,
        "generation_poll_interval": 2,  # the most the setting accepts
    }
    quiet = {f"CERTCHECK_{name.upper()}": json.dumps(value) for name, value in settings.items()}
    servers = {
        "bare": ({}, uvicorn_app("bench.baselines.bare_asgi:app"), "/"),
        "certcheck": (registry.env | quiet, certcheck_serve("--workers", "1"), "/readyz"),
    }
    figures: dict[str, list[float]] = {name: [] for name in servers}
    for round_ in range(rounds):
        for name, (env, command, ready) in servers.items():
            file = out / f"callgrind.served.{kind}.{name}.{round_}"
            valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
            with served(
                env, work, [*valgrind, f"--callgrind-out-file={file}", *command], ready
            ) as svc:
                counted = _count_served(svc, file, registry.key, bodies, requests)
            figures[name].append(counted / requests)
    bare, verify = min(figures["bare"]), min(figures["certcheck"])
    return (
        f"{kind:10}  served, instructions a request: bare {bare:,.0f}; verify (records off) "
        f"{verify:,.0f}; bare/verify {bare / verify:.3f}  (rounds: bare {_fmt(figures['bare'])}; "
        f"verify {_fmt(figures['certcheck'])})"
    )


def _count_served(svc: Served, file: Path, key: str, bodies: list[bytes], requests: int) -> int:
    """Instructions the server counted while answering `requests` verify requests, after the
    hot set once uncounted (the cache filled, every path taken once), less what it counts in
    the same time with nothing to answer (its timers: uvicorn's tick, the log thread)."""
    host, port = svc.base.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(host, int(port), timeout=600)

    def verify(body: bytes) -> None:
        connection.request("POST", "/v1/verify", body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"a served verify answered {answer.status}")

    try:
        for body in bodies:
            verify(body)
        _control("--instr=on", svc.pid)
        idle_started = time.monotonic()
        time.sleep(_IDLE_SECONDS)
        _control("--dump", svc.pid)  # part 1: idle
        started = time.monotonic()
        idle_seconds = started - idle_started
        for i in range(requests):
            verify(bodies[i % len(bodies)])
        _control("--dump", svc.pid)  # part 2: the requests
        busy_seconds = time.monotonic() - started
        _control("--instr=off", svc.pid)
    finally:
        connection.close()
    idle = _total(file.with_name(f"{file.name}.1"))
    busy = _total(file.with_name(f"{file.name}.2"))
    return round(busy - idle * busy_seconds / idle_seconds)


_IDLE_SECONDS = 3.0


def _control(command: str, pid: int) -> None:
    done = subprocess.run(  # nosec B603 B607 - valgrind's own tool
        ["callgrind_control", command, str(pid)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or "OK" not in done.stdout:
        raise SystemExit(f"callgrind_control {command} {pid}: {done.stdout}{done.stderr}")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def _compiled_switch(work: Path) -> Path:
    source, library = work / "switch.c", work / "switch.so"
    source.write_text(_SWITCH)
    compiled = subprocess.run(  # nosec B603 B607 - a fixed command
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode != 0:
        raise SystemExit(f"could not compile Valgrind's switch:\n{compiled.stderr}")
    return library


def _counted(plan: dict[str, Any], out: Path) -> tuple[int, int]:
    """Instructions the child counted: its requests (dumped to `out`.1 when they are done),
    then the flush of their records (`out`, when the child ends)."""
    env = {**os.environ, _CHILD: json.dumps(plan), "PYTHONHASHSEED": "0"}
    done = subprocess.run(  # nosec B603 - our own interpreter under valgrind
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the measured child failed ({done.returncode}):\n{done.stderr[-8000:]}")
    return _total(out.with_name(f"{out.name}.1")), _total(out)


def _total(path: Path) -> int:
    # "totals", not "summary": the file of the last part has its summary wrong.
    totals = re.search(r"^totals: (\d+)", path.read_text(), re.MULTILINE)
    if totals is None:
        raise SystemExit(f"no total in {path}")
    return int(totals.group(1))


def _child(plan: dict[str, Any]) -> int:
    os.environ.update(plan["env"])
    # The log thread wakes by the clock too: lines wait for it until the child ends.
    logs._WRITE_EVERY = 3600.0
    log_to_nowhere()
    switch = ctypes.CDLL(plan["switch"])
    bodies = Path(plan["bodies"]).read_bytes().split(b"\n")
    asyncio.run(_requests(plan, bodies, switch))
    # Not through the interpreter's exit, which joins the log thread: it sleeps for an hour.
    # Valgrind writes its last count as the process ends either way.
    os._exit(0)


async def _requests(plan: dict[str, Any], bodies: list[bytes], switch: ctypes.CDLL) -> None:
    # Imported here: Settings reads the environment the child was given.
    from certcheck.app import create_app
    from certcheck.config import Settings

    # _QUIET, and the registry poll and flush interval an hour, past what the settings accept
    # (model_copy does not validate), so that the one flush is the one at the end.
    settings = Settings(check_records=plan["records"], **_QUIET)
    hour = {"check_flush_seconds": 3600.0, "generation_poll_interval": 3600.0}
    app = create_app(settings.model_copy(update=hour))
    gc.collect()
    gc.freeze()  # as a served worker is set up (serving.served_app)
    sys.setswitchinterval(SWITCH_INTERVAL)
    async with LifespanManager(app) as manager:
        verify = verifier(manager.app, plan["key"], plan["path"])
        for body in bodies:  # the hot set into the cache, the key into its cache
            if await verify(body) != 200:
                raise SystemExit("a warm-up verify failed: is the registry loaded?")
        recorder = manager._state["evidence"].recorder
        await recorder.flush()
        switch.start()
        for i in range(plan["requests"]):
            await verify(bodies[i % len(bodies)])
        switch.dump()
        await recorder.flush()
        switch.stop()


if __name__ == "__main__":
    raise SystemExit(main())
