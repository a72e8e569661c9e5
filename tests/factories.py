"""Certificates for tests, with every field defaulted to a plausible value."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from certcheck.verification.records import Certificate, Status

TODAY = date(2026, 11, 23)


def cert(cert_no: str = "2024010901234567", **changes: Any) -> Certificate:
    base = Certificate(
        cert_no=cert_no,
        status=Status.VALID,
        holder="Example Electronics Co., Ltd.",
        manufacturer="Example Electronics Co., Ltd.",
        factory="Example Electronics (Dongguan) Factory",
        product_code=cert_no[6:10],
        product_name="Portable computer",
        models=("XK-200", "XK-200S"),
        issued_on=date(2024, 3, 14),
        expires_on=date(2024, 3, 14) + timedelta(days=5 * 365),
        status_changed_on=None,
        status_reason=None,
    )
    return base._replace(**changes)
