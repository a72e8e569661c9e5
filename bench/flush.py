"""What writing check records costs the event loop: flushes beside a busy loop.

    python -m bench.flush [--database sqlite|postgresql] [--records 10000] [--flush 500]

The app is started as bench.inproc starts it (lifespan running, records on, the served switch
interval), its background flush at its longest interval (2 s). Verifies of the hot set fill
the buffer with `--flush` records at a time (a served flush every 0.25 s at 2,000 verifies a
second holds 500), and each lot is flushed while a task on the same loop does plain Python
work in 50 us slices, yielding between them as a busy loop does. Printed per record, the
round whose loop lost the least: the flushes' wall time (how long records wait to be written
while the loop is busy); the loop thread's time off the CPU meanwhile (waiting for the GIL
that the flush's threads hold, or switched out for them); the CPU of the process's other
threads (the flush's: its rows, the driver, SQLite's own work).

The loop's time off the CPU is what records take from requests however many cores there are:
a flush whose driver gives up and takes back the GIL once a row forces a switch of the loop
a row (bench/README.md, "Check records on SQLite").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from asgi_lifespan import LifespanManager

from bench.inproc import log_to_nowhere, registries, verifier
from certcheck.serving import SWITCH_INTERVAL

_SLICE = 50e-6  # seconds of Python work between two turns of the busy task


@dataclass
class Figures:
    records: int = 0  # written by the timed flushes (the background flush may take some)
    wall: float = 0.0
    off_cpu: float = 0.0
    threads_cpu: float = 0.0  # the process's CPU but the loop thread's

    def per_record(self, seconds: float) -> float:
        return seconds / max(1, self.records) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flush", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--records", type=int, default=10_000, help="per round")
    parser.add_argument("--flush", type=int, default=500, help="records a flush writes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    log_to_nowhere()
    for kind, registry, bodies in registries("certcheck-flush-", args.database):
        rounds = asyncio.run(_measure(registry.env, registry.key, bodies, args))
        best = min(rounds, key=lambda f: f.per_record(f.off_cpu))
        print(
            f"{kind:10}  a record: flush wall {best.per_record(best.wall):6.1f} us, "
            f"loop off the CPU {best.per_record(best.off_cpu):5.1f} us, other threads' "
            f"CPU {best.per_record(best.threads_cpu):6.1f} us  (loop off the CPU by round: "
            + " ".join(f"{f.per_record(f.off_cpu):.1f}" for f in rounds)
            + ")"
        )
    return 0


async def _measure(
    env: dict[str, str], key: str, bodies: list[bytes], args: argparse.Namespace
) -> list[Figures]:
    os.environ.update(env)
    # Imported here: Settings reads the environment set just above.
    from certcheck.app import create_app
    from certcheck.config import Settings

    app = create_app(Settings(check_records=True, check_flush_seconds=2.0))
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)
    rounds: list[Figures] = []
    async with LifespanManager(app) as manager:
        verify = verifier(manager.app, key)
        recorder = manager._state["evidence"].recorder
        for body in bodies:  # the hot set into the cache
            if await verify(body) != 200:
                raise SystemExit("verify did not answer 200: is the registry loaded?")
        await recorder.flush()
        sent = 0
        for _ in range(args.rounds):
            figures = Figures()
            for _ in range(0, args.records, args.flush):
                for _ in range(args.flush):
                    await verify(bodies[sent % len(bodies)])
                    sent += 1
                await _flush_beside_busy_loop(recorder, figures)
            rounds.append(figures)
    return rounds


async def _flush_beside_busy_loop(recorder: Any, figures: Figures) -> None:
    done = asyncio.Event()
    busy = asyncio.create_task(_busy(done))
    await asyncio.sleep(0)  # the busy task running before the flush starts
    wall, loop_cpu, cpu = time.perf_counter(), time.thread_time(), time.process_time()
    figures.records += await recorder.flush()
    wall = time.perf_counter() - wall
    figures.wall += wall
    loop_cpu = time.thread_time() - loop_cpu
    figures.off_cpu += wall - loop_cpu
    figures.threads_cpu += time.process_time() - cpu - loop_cpu
    done.set()
    await busy


async def _busy(done: asyncio.Event) -> None:
    while not done.is_set():
        until = time.perf_counter() + _SLICE
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(0)


if __name__ == "__main__":
    raise SystemExit(main())
