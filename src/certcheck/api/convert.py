"""Explicit conversions from records to wire schemas."""

from __future__ import annotations

from certcheck.api.schemas import CertificateOut, VerifyResponse
from certcheck.checking import Check
from certcheck.verification.records import Certificate


def certificate_out(cert: Certificate) -> CertificateOut:
    return CertificateOut(
        cert_no=cert.cert_no,
        status=cert.status,
        holder=cert.holder,
        manufacturer=cert.manufacturer,
        factory=cert.factory,
        product_code=cert.product_code,
        product_name=cert.product_name,
        models=list(cert.models),
        body_code=cert.body_code,
        issued_on=cert.issued_on,
        expires_on=cert.expires_on,
        status_changed_on=cert.status_changed_on,
        status_reason=cert.status_reason,
    )


def verify_response(check: Check, listing_id: str | None) -> VerifyResponse:
    return VerifyResponse(
        check_id=check.check_id,
        listing_id=listing_id,
        cert_no=check.cert_no,
        decision=check.decision.verdict,
        reason=check.decision.reason,
        reasons=list(check.decision.reasons),
        certificate=None if check.certificate is None else certificate_out(check.certificate),
        registry_as_of=check.registry_as_of,
        checked_at=check.checked_at,
        cert_no_given=check.given,
        detail=check.detail,
    )
