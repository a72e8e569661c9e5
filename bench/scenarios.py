"""The scenarios, in the order each round runs them, with their baselines and targets."""

from __future__ import annotations

from dataclasses import dataclass

from bench import measures as m
from bench.memory import cache_full
from bench.prepare import Sizes

RSS_TARGET = 300.0  # MiB per worker with the million-certificate registry


@dataclass(frozen=True, slots=True)
class Target:
    metric: str  # "ratio", "p99_ms", "rss_mib" or "value"
    op: str  # ">=" or "<"
    bound: float
    label: str

    def met(self, figure: float | None) -> bool | None:
        if figure is None:
            return None
        return figure >= self.bound if self.op == ">=" else figure < self.bound


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    unit: str  # "req/s", "items/s", "s" or "MiB"
    measure: m.Measure
    baseline: str | None = None  # the ratio's denominator, measured in the same round
    targets: tuple[Target, ...] = ()
    needs: tuple[str, ...] = ()  # scenarios that must run before it in a round

    @property
    def lower_is_better(self) -> bool:
        return self.unit in ("s", "MiB")


def _rss() -> Target:
    return Target("rss_mib", "<", RSS_TARGET + 0.5, f"RSS ≤{RSS_TARGET:.0f} MiB")


def _ratio(bound: float, of: str) -> Target:
    return Target("ratio", ">=", bound, f"≥{bound:g}x {of}")


def catalogue(sizes: Sizes) -> list[Scenario]:
    p99 = Target("p99_ms", "<", 10.0, "p99 <10 ms")
    # CERTCHECK_CHECK_RECORDS=off exists to measure what check records cost: the same load
    # without them is the baseline of a row that repeats the figure measured with them.
    off = {"CERTCHECK_CHECK_RECORDS": "off"}
    full = Target("value", "<", RSS_TARGET + 0.5, f"≤{RSS_TARGET:.0f} MiB")
    # 30 s for a million lines; a smaller run gets its share (a quick run: indicative only).
    job_bound = 30.0 * sizes.recheck_lines / 1_000_000
    job = Target("value", "<", job_bound, f"<{job_bound:g} s")
    s = Scenario
    return [
        s("bare", "req/s", m.closed("bare", None, "hot")),
        s("naive-orm-pg", "req/s", m.closed("naive", "postgresql", "cold")),
        s("naive-orm-sqlite", "req/s", m.closed("naive", "sqlite", "cold")),
        s("verify-warm-pg", "req/s", m.closed("certcheck", "postgresql", "hot"), "bare",
          (_ratio(0.40, "bare"),)),
        s("verify-warm-pg-records-off", "req/s",
          m.closed("certcheck", "postgresql", "hot", settings=off), "bare"),
        s("records-verify-pg", "req/s", m.same_as("verify-warm-pg"), "verify-warm-pg-records-off",
          (_ratio(0.9, "records off"),), needs=("verify-warm-pg",)),
        s("verify-warm-sqlite", "req/s", m.closed("certcheck", "sqlite", "hot"), "bare",
          (_ratio(0.40, "bare"),)),
        s("verify-warm-sqlite-records-off", "req/s",
          m.closed("certcheck", "sqlite", "hot", settings=off), "bare"),
        s("records-verify-sqlite", "req/s", m.same_as("verify-warm-sqlite"),
          "verify-warm-sqlite-records-off", (_ratio(0.9, "records off"),),
          needs=("verify-warm-sqlite",)),
        s("verify-cold-pg", "req/s", m.closed("certcheck", "postgresql", "cold"), "naive-orm-pg",
          (_ratio(2.5, "naive"), _rss())),
        s("verify-cold-sqlite", "req/s", m.closed("certcheck", "sqlite", "cold"),
          "naive-orm-sqlite", (_rss(),)),
        s("verify-warm-pg-2w", "req/s", m.closed("certcheck", "postgresql", "hot", 2),
          "verify-warm-pg", (_ratio(1.6, "1 worker"), _rss())),
        s("verify-cold-pg-2w", "req/s", m.closed("certcheck", "postgresql", "cold", 2),
          "verify-cold-pg", (_ratio(1.6, "1 worker"), _rss())),
        s("latency-warm-pg", "req/s", m.latency("verify-warm-pg", "postgresql", "hot"),
          targets=(p99,), needs=("verify-warm-pg",)),
        s("latency-cold-pg", "req/s", m.latency("verify-cold-pg", "postgresql", "cold"),
          targets=(p99,), needs=("verify-cold-pg",)),
        s("latency-warm-sqlite", "req/s", m.latency("verify-warm-sqlite", "sqlite", "hot"),
          targets=(p99,), needs=("verify-warm-sqlite",)),
        s("cache-full-pg", "MiB", cache_full("postgresql", "verify-warm-pg"), targets=(full, p99),
          needs=("verify-warm-pg",)),
        s("batch-warm-pg", "items/s", m.batch("postgresql", "batch-warm"), "bare",
          (_ratio(4, "bare req/s"),)),
        s("batch-cold-pg", "items/s", m.batch("postgresql", "batch-cold"), "bare",
          (_ratio(2, "bare req/s"), _rss())),
        s("plain-load-pg", "s", m.load_registry("postgresql", "plain")),
        s("import-pg", "s", m.load_registry("postgresql", "certcheck"), "plain-load-pg",
          (_ratio(0.75, "plain COPY"),)),
        s("plain-load-sqlite", "s", m.load_registry("sqlite", "plain")),
        s("import-sqlite", "s", m.load_registry("sqlite", "certcheck"), "plain-load-sqlite",
          (_ratio(0.9, "plain executemany"),)),
        s("recheck-batch-pg", "s", m.recheck("postgresql", "batch", "recheck-job-pg")),
        s("recheck-job-pg", "s", m.recheck("postgresql", "job", "recheck-batch-pg"),
          "recheck-batch-pg", (job, _rss())),
        s("recheck-job-pg-records-off", "s",
          m.recheck("postgresql", "job", "recheck-batch-pg", settings=off), "recheck-batch-pg"),
        s("records-recheck-pg", "s", m.same_as("recheck-job-pg"), "recheck-job-pg-records-off",
          (_ratio(0.8, "records off"),), needs=("recheck-job-pg",)),
        s("recheck-job-pg-2w", "s", m.recheck("postgresql", "job", "recheck-batch-pg", workers=2),
          "recheck-job-pg", (_rss(),)),
        s("recheck-batch-sqlite", "s", m.recheck("sqlite", "batch", "recheck-job-sqlite")),
        s("recheck-job-sqlite", "s", m.recheck("sqlite", "job", "recheck-batch-sqlite"),
          "recheck-batch-sqlite", (job, _rss())),
        s("recheck-job-sqlite-records-off", "s",
          m.recheck("sqlite", "job", "recheck-batch-sqlite", settings=off),
          "recheck-batch-sqlite"),
        s("records-recheck-sqlite", "s", m.same_as("recheck-job-sqlite"),
          "recheck-job-sqlite-records-off", (_ratio(0.8, "records off"),),
          needs=("recheck-job-sqlite",)),
    ]  # fmt: skip


def select(scenarios: list[Scenario], only: list[str], *, baselines: bool) -> list[Scenario]:
    """The scenarios named (a name or a prefix such as `verify-`), with what they need and,
    unless told otherwise, their baselines, in catalogue order."""
    by_name = {s.name: s for s in scenarios}
    wanted: set[str] = set()
    for name in only:
        matched = [s for s in by_name if s == name or s.startswith(name)]
        if not matched:
            raise SystemExit(f"no scenario {name!r}; there are: {', '.join(by_name)}")
        wanted.update(matched)
    todo = list(wanted)
    while todo:
        scenario = by_name[todo.pop()]
        extra = [*scenario.needs, *([scenario.baseline] if baselines and scenario.baseline else [])]
        for name in extra:
            if name not in wanted:
                wanted.add(name)
                todo.append(name)
    return [s for s in scenarios if s.name in wanted]
