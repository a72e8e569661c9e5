"""GET /v1/signals: certificate numbers whose checks look like misuse, ranked by score.

Read from signal_counts (staged.py), never from the records. The scoring, also in the
README and docs/evidence.md:

- MANY_MERCHANTS: listed from MANY_MERCHANTS_FROM distinct merchants claiming the number;
  score = the number of distinct merchants.
- MANUFACTURER_MISMATCH, PRODUCT_MISMATCH, MODEL_MISMATCH: listed from REPEATED_FROM answers
  with that reason; score = those answers + MERCHANT_WEIGHT x the distinct merchants behind
  them (the same false claim from several shops is worse than one shop's repeated typo).

Ties: more checks first, then the number and the kind, so the order is stable.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import signal_counts
from certcheck.evidence.tally import EVIDENCE_IDS, SignalKind

MANY_MERCHANTS_FROM = 5
REPEATED_FROM = 2
MERCHANT_WEIGHT = 2


@dataclass(frozen=True, slots=True)
class Signal:
    cert_no: str
    kind: str
    score: int
    checks: int
    merchants: int
    evidence: list[str]  # check ids, newest first, at most EVIDENCE_IDS


def score(kind: str, checks: int, merchants: int) -> int | None:
    """The score of a signal, or None below the threshold of its kind (the SQL's rule)."""
    if kind == SignalKind.MANY_MERCHANTS:
        return merchants if merchants >= MANY_MERCHANTS_FROM else None
    return checks + MERCHANT_WEIGHT * merchants if checks >= REPEATED_FROM else None


async def signals(engine: AsyncEngine, platform: str | None, limit: int) -> list[Signal]:
    """The `limit` highest-scoring signals over `platform`'s checks (None: every platform's;
    merchants of different platforms are different merchants, so their counts add up)."""
    s = signal_counts.c
    checks, merchants = func.sum(s.checks), func.sum(s.merchants)
    many = s.kind == SignalKind.MANY_MERCHANTS.value
    points: ColumnElement[int] = case((many, merchants), else_=checks + MERCHANT_WEIGHT * merchants)
    listed = or_(and_(many, merchants >= MANY_MERCHANTS_FROM), and_(~many, checks >= REPEATED_FROM))
    ranked = (
        select(s.cert_no, s.kind, points, checks, merchants)
        .group_by(s.cert_no, s.kind)
        .having(listed)
        .order_by(points.desc(), checks.desc(), s.cert_no, s.kind)
        .limit(limit)
    )
    if platform is not None:
        ranked = ranked.where(s.platform == platform)
    async with engine.connect() as conn:
        top = (await conn.execute(ranked)).all()
        if not top:
            return []
        evidence_query = select(s.cert_no, s.kind, s.evidence).where(
            s.cert_no.in_({row[0] for row in top})
        )
        if platform is not None:
            evidence_query = evidence_query.where(s.platform == platform)
        evidence: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        for cert_no, kind, ids in await conn.execute(evidence_query):
            evidence[cert_no, kind].extend(ids.split())
    return [
        Signal(
            cert_no=cert_no,
            kind=kind,
            score=int(points_),
            checks=int(checks_),
            merchants=int(merchants_),
            # Newest first across platforms too: ULIDs sort by the time they were made.
            evidence=sorted(evidence[cert_no, kind], reverse=True)[:EVIDENCE_IDS],
        )
        for cert_no, kind, points_, checks_, merchants_ in top
    ]
