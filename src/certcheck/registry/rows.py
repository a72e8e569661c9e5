"""Conversions between certificate records and table rows (the contract never follows columns)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any

from certcheck.verification.records import Certificate, Status


def certificate_from_row(row: Mapping[str, Any]) -> Certificate:
    return Certificate(
        cert_no=row["cert_no"],
        status=Status(row["status"]),
        holder=row["holder"],
        manufacturer=row["manufacturer"],
        factory=row["factory"],
        product_code=row["product_code"],
        product_name=row["product_name"],
        models=tuple(row["models"]),
        issued_on=row["issued_on"],
        expires_on=row["expires_on"],
        status_changed_on=row["status_changed_on"],
        status_reason=row["status_reason"],
    )


def digest(cert: Certificate) -> str:
    """A stable digest of every field, so changed rows are found without comparing columns."""
    parts = (
        cert.cert_no,
        cert.status.value,
        cert.holder,
        cert.manufacturer,
        cert.factory,
        cert.product_code,
        cert.product_name,
        "\x1e".join(cert.models),
        _iso(cert.issued_on),
        _iso(cert.expires_on),
        _iso(cert.status_changed_on),
        cert.status_reason,
    )
    text = "\x1f".join("\x00" if p is None else p for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def row_values(cert: Certificate) -> dict[str, Any]:
    return {
        "cert_no": cert.cert_no,
        "status": cert.status.value,
        "holder": cert.holder,
        "manufacturer": cert.manufacturer,
        "factory": cert.factory,
        "product_code": cert.product_code,
        "product_name": cert.product_name,
        "models": list(cert.models),
        "issued_on": cert.issued_on,
        "expires_on": cert.expires_on,
        "status_changed_on": cert.status_changed_on,
        "status_reason": cert.status_reason,
        "digest": digest(cert),
    }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
