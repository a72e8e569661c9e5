"""Statistics and misuse signals over a platform's checks (or, for admin keys, everyone's)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from certcheck.api.deps import EngineDep, ReaderKey
from certcheck.errors import Forbidden, InvalidDate
from certcheck.evidence import signals, stats
from certcheck.evidence.stats import GroupBy
from certcheck.keys import Principal, Scope

router = APIRouter(tags=["evidence"])

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DAY_MEANS = "a calendar day in China Standard Time (UTC+08:00), YYYY-MM-DD; included"
From = Annotated[
    str, Query(alias="from", description=_DAY_MEANS, json_schema_extra={"format": "date"})
]
To = Annotated[str, Query(description=_DAY_MEANS, json_schema_extra={"format": "date"})]


class FiguresOut(BaseModel):
    checks: int
    allow: int
    block: int
    review: int
    by_reason: dict[str, int] = Field(description="checks per answer `reason`, nonzero only")
    listings: int = Field(description="distinct (platform, listing_id) pairs checked")
    merchants: int = Field(description="distinct (platform, merchant_id) pairs checked")


class StatsRowOut(BaseModel):
    key: str | None = Field(description="the day, product code, reason or source; null: none")
    checks: int
    allow: int
    block: int
    review: int
    by_reason: dict[str, int]
    listings: int
    merchants: int


class StatsOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    group_by: GroupBy
    rows: list[StatsRowOut] = Field(description="keys with at least one check, ascending")
    total: FiguresOut


class SignalOut(BaseModel):
    cert_no: str
    kind: str = Field(
        description="MANY_MERCHANTS, MANUFACTURER_MISMATCH, PRODUCT_MISMATCH or MODEL_MISMATCH"
    )
    score: int = Field(description="higher is more suspicious; README.md explains the scoring")
    checks: int = Field(description="the checks of cert_no behind the signal")
    merchants: int = Field(description="distinct non-null merchant_id among those checks")
    evidence: list[str] = Field(description="some of those check_ids (at most 20), newest first")


class SignalsOut(BaseModel):
    signals: list[SignalOut]


def _day(name: str, value: str) -> date:
    try:
        if _DAY.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidDate(f"{name}: {value[:40]!r} is not a calendar day (YYYY-MM-DD)")


def _platform(key: Principal, asked: str | None) -> str | None:
    """Whose checks: an admin key's choice (None: all), else the key's own platform."""
    if Scope.ADMIN in key.scopes:
        return asked
    if asked is not None:
        raise Forbidden("platform= needs a key with the 'admin' scope")
    return key.platform


_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "FORBIDDEN: platform= without the admin scope"},
    422: {"description": "INVALID_DATE, INVALID_DATE_RANGE or VALIDATION_FAILED"},
}


@router.get("/v1/stats", response_model=StatsOut, responses=_ERRORS)
async def get_stats(
    engine: EngineDep,
    key: ReaderKey,
    from_: From,
    to: To,
    group_by: GroupBy = GroupBy.DAY,
    platform: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> StatsOut:
    """Checks, decisions, reasons and distinct listings and merchants per key
    (docs/evidence.md); a check counts within seconds of its answer."""
    first, last = _day("from", from_), _day("to", to)
    whose = _platform(key, platform)
    figures = await stats.statistics(engine, first, last, group_by, whose)
    return StatsOut.model_validate(
        {
            "from": first,
            "to": last,
            "group_by": group_by,
            "rows": [{"key": k, **_figures(f)} for k, f in figures.rows],
            "total": _figures(figures.total),
        }
    )


def _figures(figures: stats.Figures) -> dict[str, Any]:
    return {
        "checks": figures.checks,
        "allow": figures.allow,
        "block": figures.block,
        "review": figures.review,
        "by_reason": figures.by_reason,
        "listings": figures.listings,
        "merchants": figures.merchants,
    }


@router.get("/v1/signals", response_model=SignalsOut)
async def get_signals(
    engine: EngineDep,
    key: ReaderKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SignalsOut:
    """Certificate numbers whose checks look like misuse, highest score first."""
    whose = None if Scope.ADMIN in key.scopes else key.platform
    found = await signals.signals(engine, whose, limit)
    return SignalsOut(
        signals=[
            SignalOut(
                cert_no=s.cert_no,
                kind=s.kind,
                score=s.score,
                checks=s.checks,
                merchants=s.merchants,
                evidence=s.evidence,
            )
            for s in found
        ]
    )
