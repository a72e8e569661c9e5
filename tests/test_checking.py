"""Checker: one listing is decided the same whether it comes alone or among many."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.checking import Check
from certcheck.verification.records import Listing, Status
from tests.conftest import load
from tests.factories import cert
from tests.jobs.helpers import checker_over

_FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
LISTINGS = [
    Listing(None, "0901", "XK-200", None),  # no number, a product that needs a certificate
    Listing("  ", "9999", None, None),  # white space only: no number either
    Listing("2024010901000001", "0901", "XK-200", None),  # valid and covered
    Listing("2024-0109-0100-0001", None, "XK-999", "Someone Else"),  # written otherwise; review
    Listing("2024010901000002".translate(_FULL_WIDTH), None, None, None),  # revoked
    Listing("2024010901999999", None, None, None),  # not in the registry
    Listing("2024010901", None, None, None),  # malformed
    Listing("2099010901000001", None, None, None),  # a year still to come: malformed
]


def _decided(check: Check) -> Check:
    return check._replace(check_id="", checked_at=check.registry_as_of)  # all but id and time


def _counted(verdict: str, reason: str) -> float:
    labels = {"decision": verdict, "reason": reason}
    return REGISTRY.get_sample_value("certcheck_decisions_total", labels) or 0.0


async def test_check_one_decides_as_check_does(engine: AsyncEngine) -> None:
    await load(engine, [cert("2024010901000001"), cert("2024010901000002", status=Status.REVOKED)])
    checker = await checker_over(engine, certificates=0)
    together = await checker.check(LISTINGS)
    for listing, among_many in zip(LISTINGS, together, strict=True):
        reason = among_many.decision.reason
        before = _counted(reason.verdict.value, reason.value)
        alone = await checker.check_one(listing)
        assert _decided(alone) == _decided(among_many)
        assert alone.check_id != among_many.check_id
        assert _counted(reason.verdict.value, reason.value) == before + 1
    assert len({check.decision.reason for check in together}) >= 5
