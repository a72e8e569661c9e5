"""certcheck's benchmark: one command, every scenario interleaved, each against a baseline
measured in the same run.

    python -m bench                     # the full measurement (a quiet machine, ~40 min)
    python -m bench --quick             # small sizes, short runs: a smoke test in minutes
    python -m bench --only verify-warm-pg --only import --json-out run.json

Rounds run every selected scenario in turn (A B C ... A B C ...), so that a machine that
slows down part-way weighs on all of them alike. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench._common import REPOSITORY, BenchError, settle_postgres
from bench.measures import Figure
from bench.prepare import FULL, QUICK, Workload, note
from bench.report import summarise, table, warnings
from bench.scenarios import Scenario, catalogue, select


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 certificates, 2 s runs")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="a scenario or a prefix (repeatable); its baseline comes along",
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="with --only: do not add the baselines (no ratios)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="times each scenario runs")
    parser.add_argument("--certificates", type=int, help="registry size (default 1,000,000)")
    parser.add_argument("--seconds", type=float, help="each measured load (default 10)")
    parser.add_argument("--lines", type=int, help="re-check listings (default 1,000,000)")
    parser.add_argument(
        "--setting",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a CERTCHECK_ setting for certcheck, e.g. --setting cache_size 0",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="the demo registry (.csv.gz): reused if it exists, else generated there",
    )
    parser.add_argument("--json-out", type=Path, metavar="FILE", help="write the figures here")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def _sizes(args: argparse.Namespace) -> Any:
    sizes = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    if args.certificates is not None:
        changes["certificates"] = args.certificates
        changes["hot"] = min(sizes.hot, args.certificates)
    if args.seconds is not None:
        changes["seconds"] = args.seconds
    if args.lines is not None:
        changes["recheck_lines"] = args.lines
    return dataclasses.replace(sizes, **changes)


def _meta(args: argparse.Namespace, sizes: Any) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or None,
        "quick": args.quick,
        "rounds": args.rounds,
        "sizes": dataclasses.asdict(sizes),
        "settings": dict(args.setting),
        "snapshot": str(args.snapshot) if args.snapshot else None,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    sizes = _sizes(args)
    everything = catalogue(sizes)
    if args.list:
        print(
            "\n".join(f"{s.name:32} {s.unit:8} baseline: {s.baseline or '-'}" for s in everything)
        )
        return 0
    chosen = (
        select(everything, args.only, baselines=not args.no_baselines) if args.only else everything
    )
    meta = _meta(args, sizes)
    settings = {f"CERTCHECK_{name.upper()}": value for name, value in args.setting}
    rounds: list[dict[str, Figure]] = []
    errors: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="certcheck-bench-") as tmp:
        workload = Workload(Path(tmp), sizes, settings, args.snapshot)
        try:
            for number in range(1, args.rounds + 1):
                this_round: dict[str, Figure] = {}
                rounds.append(this_round)
                for scenario in chosen:
                    _measure(scenario, workload, this_round, errors, number)
        finally:
            workload.close()
    rows = summarise(chosen, rounds, errors)
    quick = "QUICK run: small sizes, targets indicative only. " if args.quick else ""
    print(f"\n{quick}{sizes.certificates:,} certificates, {args.rounds} rounds, medians")
    print(table(rows))
    for warning in warnings(rows):
        print(f"warning: {warning}")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"meta": meta, "scenarios": rows}, indent=1) + "\n")
    for name, failures in errors.items():
        print(f"FAILED {name}: " + "; ".join(" ".join(f.split())[:400] for f in failures))
    return 1 if errors else 0


def _measure(
    scenario: Scenario,
    workload: Workload,
    this_round: dict[str, Figure],
    errors: dict[str, list[str]],
    number: int,
) -> None:
    try:
        settled = settle_postgres()
    except (subprocess.CalledProcessError, OSError) as exc:  # a run of SQLite scenarios only
        settled = 0.0
        print(f"PostgreSQL not settled before {scenario.name}: {exc}", file=sys.stderr)
    if settled > 2.0:
        note(f"PostgreSQL settled before {scenario.name}", time.perf_counter() - settled)
    started = time.perf_counter()
    try:
        if missing := [n for n in scenario.needs if n not in this_round]:
            raise BenchError(f"needs {', '.join(missing)}, which failed in this round")
        figure = scenario.measure(workload, this_round)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        # One failed measurement must not cost the others: it is reported, the run goes on.
        errors.setdefault(scenario.name, []).append(f"round {number}: {exc}")
        note(f"round {number} {scenario.name} FAILED: {str(exc).strip()[:2000]}", started)
        return
    this_round[scenario.name] = figure
    note(f"round {number} {scenario.name} {figure.value:,.1f} {scenario.unit}", started)


if __name__ == "__main__":
    sys.exit(main())
