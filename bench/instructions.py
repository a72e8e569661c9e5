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

It prints, per database, instructions per verify (per item with `--batch`) with records off and
on, each child's figure, and their ratio. The flush interval is an hour, so that the number of
flushes (one, at the end) does not depend on how slow Valgrind makes the process; the hash seed
is fixed. Rounds of one build agree within about a percent; compare builds by running this
command in each. `--keep DIR` keeps the callgrind files, for `callgrind_annotate --inclusive=yes`
(the compiled modules' functions show by name, as `CPyDef_<module>___<function>`).

What runs by the clock still differs from a served process: under Valgrind a verify takes
milliseconds, so nearly every id starts a new millisecond and is encoded whole (ids.py), where a
busy server mostly changes an id's last two characters. A change to such a path is timed
with timeit, not judged here.

Needs valgrind, its headers (`valgrind/callgrind.h`) and a C compiler: the instrumentation is
switched by Valgrind's client requests, compiled into a small library at the start.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import re
import shutil
import subprocess  # nosec B404 - runs valgrind and the C compiler
import sys
import tempfile
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager

from bench.inproc import log_to_nowhere, registries, verifier
from bench.prepare import QUICK
from certcheck.serving import SWITCH_INTERVAL

_SWITCH = """#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_START_INSTRUMENTATION; }
void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""
_CHILD = "CERTCHECK_BENCH_INSTRUCTIONS"  # the child's instructions, as JSON


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
    args = parser.parse_args(argv)
    missing = [tool for tool in ("valgrind", "cc") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"needs {' and '.join(missing)} (Debian: apt-get install valgrind gcc)")
    with tempfile.TemporaryDirectory(prefix="certcheck-instructions-") as tmp:
        work = Path(tmp)
        switch = _compiled_switch(work)
        out_dir = args.keep or work
        out_dir.mkdir(parents=True, exist_ok=True)
        made = registries("certcheck-instructions-", args.database, args.hot)
        for kind, registry, bodies in made:
            if args.batch:
                items = [bodies[i % len(bodies)] for i in range(args.batch)]
                bodies = [b'{"items":[' + b",".join(items) + b"]}"]
            bodies_file = work / "bodies"
            bodies_file.write_bytes(b"\n".join(bodies))
            per_item = args.requests * (args.batch or 1)
            figures: dict[str, list[float]] = {"off": [], "on": []}
            for round_ in range(args.rounds):
                for records in figures:
                    plan = {
                        "env": registry.env,
                        "key": registry.key,
                        "bodies": str(bodies_file),
                        "records": records == "on",
                        "requests": args.requests,
                        "path": "/v1/verify/batch" if args.batch else "/v1/verify",
                        "switch": str(switch),
                    }
                    out = out_dir / f"callgrind.{kind}.{records}.{round_}.out"
                    figures[records].append(_counted(plan, out) / per_item)
            off, on = min(figures["off"]), min(figures["on"])
            unit = "an item" if args.batch else "a verify"
            print(
                f"{kind:10}  instructions {unit}: records off {off:,.0f}  on {on:,.0f}  "
                f"off/on {off / on:.3f}  (off {_fmt(figures['off'])}; on {_fmt(figures['on'])})"
            )
    return 0


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


def _counted(plan: dict[str, Any], out: Path) -> int:
    """Instructions the child counted between its switches."""
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
    totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
    if totals is None:
        raise SystemExit(f"no total in {out}")
    return int(totals.group(1))


def _child(plan: dict[str, Any]) -> int:
    os.environ.update(plan["env"])
    log_to_nowhere()
    switch = ctypes.CDLL(plan["switch"])
    bodies = Path(plan["bodies"]).read_bytes().split(b"\n")
    asyncio.run(_requests(plan, bodies, switch))
    return 0


async def _requests(plan: dict[str, Any], bodies: list[bytes], switch: ctypes.CDLL) -> None:
    # Imported here: Settings reads the environment the child was given.
    from certcheck.app import create_app
    from certcheck.config import Settings

    # An hour, past what the setting accepts (model_copy does not validate): the one flush is
    # the one at the end, however slow Valgrind makes the loop.
    settings = Settings(check_records=plan["records"])
    app = create_app(settings.model_copy(update={"check_flush_seconds": 3600.0}))
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
        await recorder.flush()
        switch.stop()


if __name__ == "__main__":
    raise SystemExit(main())
