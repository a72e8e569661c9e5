"""The one mapping of a certificate record to plain values and back: table rows, snapshot and
feed objects, and the digest that finds changed rows all come from it. The wire contract
(api/schemas.py) is converted separately and never follows these names."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping
from datetime import date
from typing import Any, get_args, get_type_hints

from certcheck.db.tables import certificates
from certcheck.verification.records import STATUS_OF, Certificate, Status

# The stored fields in column order, which is also the order of snapshot columns and of the
# digest's parts; the record (verification/records.py) keeps its own order.
FIELDS: tuple[str, ...] = tuple(c.name for c in certificates.columns if c.name != "digest")
_MODELS_AT = FIELDS.index("models")
_DATES = tuple(name for name in FIELDS if date in get_args(get_type_hints(Certificate)[name]))
_DATES_AT = tuple(FIELDS.index(name) for name in _DATES)
_RECORD = Certificate._fields
_in_record_order = operator.itemgetter(*_RECORD)
_STATUS_IN_RECORD, _MODELS_IN_RECORD = _RECORD.index("status"), _RECORD.index("models")


def _plain(cert: Certificate) -> dict[str, Any]:
    """The one field list: values as rows and JSON hold them (the status's word, models a list),
    in FIELDS order (a test holds it to the table's). Spelled out rather than looped over: an
    import runs it on every row."""
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
    }


def certificate_to_snapshot_dict(cert: Certificate) -> dict[str, Any]:
    """The certificate as one JSON Lines snapshot object (dates as ISO strings)."""
    values = _plain(cert)
    for name in _DATES:
        if values[name] is not None:
            values[name] = values[name].isoformat()
    return values


def row_values(cert: Certificate) -> dict[str, Any]:
    """The certificate as a row of the `certificates` table, its digest included."""
    row = _plain(cert)
    row["digest"] = _digest(row)
    return row


def certificate_from_row(row: Mapping[str, Any]) -> Certificate:
    values = list(_in_record_order(row))
    text = values[_STATUS_IN_RECORD]
    values[_STATUS_IN_RECORD] = STATUS_OF.get(text) or Status(text)  # Status: its ValueError
    values[_MODELS_IN_RECORD] = tuple(values[_MODELS_IN_RECORD])
    return Certificate._make(values)


def digest(cert: Certificate) -> str:
    """A stable digest of every field, so changed rows are found without comparing columns."""
    return _digest(_plain(cert))


def _digest(values: dict[str, Any]) -> str:
    # Stored in every row: a change to this text makes every certificate look changed once.
    parts = list(values.values())
    parts[_MODELS_AT] = "\x1e".join(parts[_MODELS_AT])
    for at in _DATES_AT:
        if parts[at] is not None:
            parts[at] = parts[at].isoformat()
    text = "\x1f".join(["\x00" if part is None else part for part in parts])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
