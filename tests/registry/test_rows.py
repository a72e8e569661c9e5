"""The one certificate-row mapping: rows, snapshot objects and the digest agree with the table."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from certcheck.db.tables import certificates
from certcheck.registry.rows import (
    FIELDS,
    certificate_from_row,
    certificate_to_snapshot_dict,
    digest,
    row_values,
)
from certcheck.verification.records import Certificate, Status
from tests.factories import cert

BARE = cert("2024010901234568", models=(), expires_on=None, manufacturer=None, status_reason="x")


def test_a_row_has_every_column_of_the_table() -> None:
    assert list(row_values(cert())) == [column.name for column in certificates.columns]


@pytest.mark.parametrize("certificate", [cert(), BARE], ids=["full", "bare"])
def test_a_row_reads_back_as_the_same_certificate(certificate: Certificate) -> None:
    assert certificate_from_row(row_values(certificate)) == certificate


def test_a_snapshot_object_has_every_field_in_order_with_iso_dates() -> None:
    got = certificate_to_snapshot_dict(cert(status=Status.SUSPENDED))
    assert tuple(got) == FIELDS
    assert (got["status"], got["issued_on"], got["status_changed_on"]) == (
        "suspended",
        "2024-03-14",
        None,
    )


def test_the_digest_is_the_one_stored_rows_already_hold() -> None:
    # Pinned: a different digest would make every stored certificate look changed once.
    assert digest(cert()) == "e1ff2a34c2b9a95b37eb51eb93d2b06d"
    assert digest(BARE) == "1330763c74b7b6af281acdc177bec023"
    assert row_values(BARE)["digest"] == digest(BARE)


def test_the_digest_changes_with_every_field() -> None:
    base = cert()
    changed: dict[str, Any] = {
        "status": Status.REVOKED,
        "holder": "Other",
        "manufacturer": None,
        "factory": "Other",
        "product_code": "0902",
        "product_name": None,
        "models": ("XK-200",),
        "issued_on": date(2024, 3, 15),
        "expires_on": None,
        "status_changed_on": date(2026, 1, 1),
        "status_reason": "why",
    }
    assert set(changed) == set(FIELDS) - {"cert_no"}
    digests = {digest(base), digest(cert("2024010901234568"))}
    digests |= {digest(base._replace(**{name: value})) for name, value in changed.items()}
    assert len(digests) == len(changed) + 2
