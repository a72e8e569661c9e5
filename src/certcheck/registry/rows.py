"""The one mapping of a certificate record to plain values and back: table rows, snapshot and
feed objects, and the digest that finds changed rows all come from it. The wire contract
(api/schemas.py) is converted separately and never follows these names."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping
from dataclasses import fields
from datetime import date
from typing import Any, get_args, get_type_hints

from certcheck.verification.records import Certificate, Status

# The record's fields, in the order of snapshot columns and of the digest's parts.
FIELDS: tuple[str, ...] = tuple(field.name for field in fields(Certificate))
_items = operator.itemgetter(*FIELDS)
_STATUS_AT, _MODELS_AT = FIELDS.index("status"), FIELDS.index("models")
_DATES = tuple(name for name in FIELDS if date in get_args(get_type_hints(Certificate)[name]))
_DATES_AT = tuple(FIELDS.index(name) for name in _DATES)


def _plain(cert: Certificate) -> dict[str, Any]:
    """The one field list: values as rows and JSON hold them (the status's word, models a list),
    in FIELDS order. Spelled out rather than looped over: an import runs it on every row."""
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
        values[name] = _iso(values[name])
    return values


def row_values(cert: Certificate) -> dict[str, Any]:
    """The certificate as a row of the `certificates` table, its digest included."""
    row = _plain(cert)
    row["digest"] = _digest(row)
    return row


def certificate_from_row(row: Mapping[str, Any]) -> Certificate:
    values = list(_items(row))
    values[_STATUS_AT] = Status(values[_STATUS_AT])
    values[_MODELS_AT] = tuple(values[_MODELS_AT])
    return Certificate(*values)


def digest(cert: Certificate) -> str:
    """A stable digest of every field, so changed rows are found without comparing columns."""
    return _digest(_plain(cert))


def _digest(values: dict[str, Any]) -> str:
    # Stored in every row: a change to this text makes every certificate look changed once.
    parts = ["\x00" if value is None else value for value in values.values()]
    parts[_MODELS_AT] = "\x1e".join(values["models"])
    for name, at in zip(_DATES, _DATES_AT, strict=True):
        if values[name] is not None:
            parts[at] = values[name].isoformat()
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
