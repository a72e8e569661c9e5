"""The public lookup pages: GET /lookup (a form) and GET /lookup/{cert_no} (one certificate).

HTML for people, no key: a shopper types a number, or scans a label's QR code that carries
/lookup/{cert_no}. Numbers are normalised and statuses decided exactly as /v1 does. Each client
address is rate-limited (CERTCHECK_LOOKUP_RATE_LIMIT) by the same limiter as API keys; the
address is the one uvicorn reports, which trusts X-Forwarded-For only from FORWARDED_ALLOW_IPS.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from certcheck.api.deps import CheckerDep, LookupLimiterDep, StoreDep
from certcheck.api.lookup import pages, view
from certcheck.errors import CertcheckError
from certcheck.observability.metrics import UNAVAILABLE
from certcheck.verification.numbers import is_absent, normalise_cert_no, today_in_shanghai

# Not in the OpenAPI document: these are pages for people, not part of the API's contract,
# and the README and docs/api.md describe them.
router = APIRouter(prefix="/lookup", include_in_schema=False, default_response_class=HTMLResponse)


async def refused(request: Request, limiter: LookupLimiterDep) -> Response | None:
    """The 429 page when this client address is over its limit, else None."""
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(address)
    return None if wait is None else pages.too_many(wait)


Refused = Annotated[Response | None, Depends(refused)]


@router.get("", name="lookup_form")
async def lookup_form(store: StoreDep, over_limit: Refused, cert_no: str | None = None) -> Response:
    """The form; with ?cert_no=, a redirect to that certificate's own page."""
    if over_limit is not None:
        return over_limit
    freshness = view.freshness(store.info)
    if cert_no is None:
        return pages.render("base.html", freshness=freshness)
    if is_absent(cert_no):
        return pages.problem(422, view.EMPTY, hint=view.FORMAT_HINT, freshness=freshness)
    number = normalise_cert_no(cert_no, today_in_shanghai(datetime.now(UTC)))
    if number is None:
        return _malformed(cert_no, freshness)
    return pages.see_other(f"/lookup/{number}")


# A path, so that a "/" typed into a number (or a QR code's) still gets this page's 422.
@router.get("/{cert_no:path}", name="lookup_certificate")
async def lookup_certificate(
    cert_no: str, store: StoreDep, checker: CheckerDep, over_limit: Refused
) -> Response:
    """One certificate's page: the link a product label's QR code carries."""
    if over_limit is not None:
        return over_limit
    if not cert_no:  # /lookup/
        return pages.render("base.html", freshness=view.freshness(store.info))
    today = today_in_shanghai(datetime.now(UTC))
    number = normalise_cert_no(cert_no, today)
    if number is None:
        return _malformed(cert_no, view.freshness(store.info))
    try:
        found = (await store.lookup([number]))[number]
    except CertcheckError as exc:
        if exc.status != 503:  # RegistryUnavailable and RegistryStale; anything else is a bug
            raise
        return _unavailable(exc, number, view.freshness(store.info))
    freshness = view.freshness(store.info)
    if found is None:
        message = view.not_found(number)
        return pages.problem(
            404, message, hint=view.NOT_FOUND_HINT, typed=number, freshness=freshness
        )
    shown = view.certificate_view(found, today=today, catalogue=checker.catalogue)
    return pages.render("certificate.html", c=shown, typed=number, freshness=freshness)


def _malformed(typed: str, freshness: str | None) -> Response:
    return pages.problem(
        422, view.MALFORMED, hint=view.FORMAT_HINT, typed=typed, freshness=freshness
    )


def _unavailable(exc: CertcheckError, number: str, freshness: str | None) -> Response:
    UNAVAILABLE.labels(code=exc.code).inc()
    retry = {"Retry-After": str(exc.retry_after or 30)}
    return pages.problem(
        exc.status, view.UNAVAILABLE, typed=number, freshness=freshness, headers=retry
    )
