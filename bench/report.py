"""Figures of all rounds folded into one row per scenario: medians, ratios to the baseline of
the same round, targets; printed as a table and written as JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from bench.measures import Figure
from bench.scenarios import Scenario


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(
    scenarios: list[Scenario], rounds: list[dict[str, Figure]], errors: dict[str, list[str]]
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for s in scenarios:
        figures = [r[s.name] for r in rounds if s.name in r]
        ratios: list[float | None] = []
        for r in rounds:
            base = r.get(s.baseline) if s.baseline else None
            if base is None or s.name not in r:
                continue
            value = r[s.name].value
            # Seconds: the baseline's time over ours, so that above 1 is better, like a rate.
            ratios.append(base.value / value if s.lower_is_better else value / base.value)
        row: dict[str, Any] = {
            "unit": s.unit,
            "value": _median([f.value for f in figures]),
            "p50_ms": _median([f.p50_ms for f in figures]),
            "p99_ms": _median([f.p99_ms for f in figures]),
            "server_cpu": _median([f.server_cpu for f in figures]),
            "generator_cpu": _median([f.generator_cpu for f in figures]),
            "rss_mib": max((f.rss_mib for f in figures if f.rss_mib is not None), default=None),
            "baseline": s.baseline,
            "ratio": _median(ratios),
            "rounds": [asdict(f) for f in figures],
            "errors": errors.get(s.name, []),
        }
        row["targets"] = [
            {"label": t.label, "metric": t.metric, "bound": t.bound, "met": t.met(row[t.metric])}
            for t in s.targets
        ]
        rows[s.name] = row
    return rows


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: dict[str, Any]) -> str:
    head = (
        "scenario",
        "figure",
        "unit",
        "p50 ms",
        "p99 ms",
        "srv CPU",
        "gen CPU",
        "RSS MiB",
        "ratio",
        "baseline",
        "target",
    )
    lines = [head]
    for name, row in rows.items():
        targets = "; ".join(
            f"{t['label']} {'-' if t['met'] is None else 'ok' if t['met'] else 'MISSED'}"
            for t in row["targets"]
        )
        spec = ",.1f" if row["unit"] == "s" else ",.0f"
        figure = "FAILED" if row["value"] is None else _cell(row["value"], spec)
        lines.append(
            (
                name,
                figure,
                row["unit"],
                _cell(row["p50_ms"], ".2f"),
                _cell(row["p99_ms"], ".2f"),
                _cell(row["server_cpu"], ".2f"),
                _cell(row["generator_cpu"], ".2f"),
                _cell(row["rss_mib"], ".0f"),
                _cell(row["ratio"], ".2f"),
                row["baseline"] or "",
                targets,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    right = {1, 3, 4, 5, 6, 7, 8}
    return "\n".join(
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def warnings(rows: dict[str, Any]) -> list[str]:
    """Signs that a figure measured the machine rather than the server."""
    found = []
    for name, row in rows.items():
        for figure in row["rounds"]:
            if (figure["generator_cpu"] or 0) > 0.9:
                found.append(
                    f"{name}: the load generator used {figure['generator_cpu']:.2f} "
                    "cores; it may have been the bottleneck"
                )
                break
            lag = figure["detail"].get("send_lag_p99_ms")
            if lag is not None and lag > 1.0:
                found.append(
                    f"{name}: the open-loop generator woke more than {lag:.1f} ms late for 1% "
                    "of its requests (counted in the latency)"
                )
                break
    return found
