"""Certificates as the cache keeps them: values that many certificates repeat, held once."""

from __future__ import annotations

import sys
from datetime import date

from certcheck.verification.records import Certificate


def compact(cert: Certificate) -> Certificate:
    """The certificate with every value many certificates share held once, not once per copy.

    A cached certificate's own data is its number and models; holders, factories, product
    names, reasons and dates repeat across a registry (a holder has many certificates), so a
    full cache costs a fraction of what separate copies would.
    """
    return Certificate(
        cert_no=cert.cert_no,
        status=cert.status,
        holder=sys.intern(cert.holder),
        manufacturer=_text(cert.manufacturer),
        factory=_text(cert.factory),
        product_code=sys.intern(cert.product_code),
        product_name=_text(cert.product_name),
        models=cert.models,  # the cache keeps them as one string of their own
        issued_on=_day(cert.issued_on),
        expires_on=_day(cert.expires_on),
        status_changed_on=_day(cert.status_changed_on),
        status_reason=_text(cert.status_reason),
    )


def _text(value: str | None) -> str | None:
    # Interned strings are freed with their last reference: nothing here outlives the cache.
    return None if value is None else sys.intern(value)


_days: dict[date, date] = {}


def _day(value: date | None) -> date | None:
    if value is None:
        return None
    if len(_days) >= 1 << 16:  # registries hold a few thousand distinct dates; stay bounded
        _days.clear()
    return _days.setdefault(value, value)
