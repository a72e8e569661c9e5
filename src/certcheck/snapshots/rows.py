"""One certificate object, a snapshot row or a feed item, validated as untrusted input."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

# Re-exported: readers and writers of snapshots take the mapping from here, with the rows.
from certcheck.db.types import UNSTORABLE
from certcheck.registry.rows import certificate_to_snapshot_dict as certificate_to_snapshot_dict
from certcheck.snapshots.statuses import parse_status
from certcheck.verification.catalogue import clean_code, is_code
from certcheck.verification.numbers import normalise_cert_no
from certcheck.verification.records import Certificate, Status


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str
    # The row's number when it could be read although the rest could not: an import keeps the
    # registry's record of it as it was, rather than dropping a certificate the file still names.
    cert_no: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    line: int
    certificate: Certificate


class _RowInvalid(Exception):
    """One field of one row is unusable; becomes a `RowError`."""


_TEXT_FIELDS = ("holder", "manufacturer", "factory", "product_name", "status_reason")
_TEXT_CAP, _MODEL_CAP, _MODELS_CAP, _CERT_NO_CAP = 512, 256, 2000, 64
_ISO_DATE = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Labels repeat on every row; records.py's fast path shares the cache.
status_of = functools.lru_cache(maxsize=64)(parse_status)


def certificate_row(line: int, fields: Mapping[str, object], today: date) -> SnapshotRow | RowError:
    """One certificate object (a snapshot row or a feed item) validated as untrusted input."""
    try:
        cert_no = _cert_no(fields.get("cert_no"), today)
    except _RowInvalid as exc:
        return RowError(line, str(exc))
    try:
        return SnapshotRow(line, _certificate(cert_no, fields, today))
    except _RowInvalid as exc:
        return RowError(line, str(exc), cert_no)


def readable_cert_no(value: object, today: date) -> str | None:
    """The normalised number in `value`, or None: for rows whose other fields cannot be read."""
    try:
        return _cert_no(value, today)
    except _RowInvalid:
        return None


def _certificate(cert_no: str, fields: Mapping[str, object], today: date) -> Certificate:
    status = _status(fields.get("status"))
    holder, manufacturer, factory, product_name, reason = [
        _text(fields.get(name), name) for name in _TEXT_FIELDS
    ]
    if holder is None:
        raise _RowInvalid("holder is required")
    return Certificate(
        cert_no=cert_no,
        status=status,
        holder=holder,
        manufacturer=manufacturer,
        factory=factory,
        product_code=_product_code(fields.get("product_code"), cert_no),
        product_name=product_name,
        models=_models(fields.get("models")),
        issued_on=_date(fields.get("issued_on"), "issued_on"),
        expires_on=_date(fields.get("expires_on"), "expires_on"),
        status_changed_on=_date(fields.get("status_changed_on"), "status_changed_on"),
        status_reason=reason,
    )


def _str(value: object, name: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    raise _RowInvalid(f"{name} must be a string, not {type(value).__name__}")


def _text(value: object, name: str, cap: int = _TEXT_CAP) -> str | None:
    """Stripped text, None when empty; refuses what the database cannot store."""
    text = _str(value, name).strip()
    if len(text) > cap:
        raise _RowInvalid(f"{name} is longer than {cap} characters")
    if UNSTORABLE.search(text):
        raise _RowInvalid(f"{name} contains a NUL character or a lone surrogate")
    return text or None


def _show(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


# The fields below need no NUL or surrogate check: such a value fails their own syntax.
def _cert_no(value: object, today: date) -> str:
    raw = _str(value, "cert_no")
    if not raw.strip():
        raise _RowInvalid("cert_no is required")
    cert_no = normalise_cert_no(raw, today) if len(raw) <= _CERT_NO_CAP else None
    if cert_no is None:
        raise _RowInvalid(
            f"cert_no {_show(raw)} is not a CCC certificate number "
            "(16 digits: year, body code, product code, sequence)"
        )
    return cert_no


def _status(value: object) -> Status:
    label = _str(value, "status")
    status = status_of(label)
    if status is None:
        raise _RowInvalid(
            f"status {_show(label)} is not a known label "
            "(valid, suspended, revoked, cancelled, expired or a Chinese equivalent)"
            if label.strip()
            else "status is required"
        )
    return status


def _product_code(value: object, cert_no: str) -> str:
    code = _str(value, "product_code")
    if not is_code(code, 4):  # already clean: the common case, without NFKC
        code = clean_code(code)
        if not code:
            return cert_no[6:10]
        if not is_code(code, 4):
            raise _RowInvalid(f"product_code {_show(code)} is not 4 digits")
    return code


def _models(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _RowInvalid(f"models must be an array of strings, not {type(value).__name__}")
    try:  # map(str.strip, ...) is the type check too: it raises TypeError on a non-string
        models = tuple(filter(None, map(str.strip, value)))
    except TypeError:
        raise _RowInvalid("models must be an array of strings") from None
    if len(models) > _MODELS_CAP:
        raise _RowInvalid(f"more than {_MODELS_CAP} models")
    if max(map(len, models), default=0) > _MODEL_CAP:
        raise _RowInvalid(f"a model is longer than {_MODEL_CAP} characters")
    if UNSTORABLE.search("".join(models)):
        raise _RowInvalid("a model contains a NUL character or a lone surrogate")
    return models


def _date(value: object, name: str) -> date | None:
    text = _str(value, name)
    try:
        return parse_date(text)
    except ValueError:
        raise _RowInvalid(f"{name} {_show(text)} is not a date written YYYY-MM-DD") from None


@functools.lru_cache(maxsize=4096)  # registries hold a few thousand distinct dates
def parse_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)
