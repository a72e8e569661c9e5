"""Staging records: a snapshot row as the tuple the database driver takes, made in one step.

An import spends its Python time here, once per row. A row arrives as the raw values of the
snapshot's COLUMNS (text, the models, None where absent) and leaves as a driver-ready tuple
(its line, the certificate's columns, its digest) or a `RowError`. A plainly clean row (16
ASCII digits, a known status label, ISO dates, text within its caps: nearly every row of a
real registry) is converted here without building a `Certificate`; any other row goes through
`rows.certificate_row`, the one definition of what a row means, so that a row's outcome and
error message are the same on both paths (tests/snapshots/test_records.py holds them equal).
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Sequence
from datetime import date
from json.encoder import encode_basestring_ascii
from typing import Any

from certcheck.registry.rows import FIELDS, row_values
from certcheck.snapshots.formats import COLUMNS
from certcheck.snapshots.rows import RowError, SnapshotRow, certificate_row, parse_date, status_of
from certcheck.verification.numbers import FIRST_YEAR

# (line, the certificates table's columns in their order, digest last): what staging loads.
Record = tuple[Any, ...]
# A row's raw values in COLUMNS order; CSV gives the models as one "a|b" text, JSON as a list.
Values = Sequence[Any]
Maker = Callable[[int, Values], Record | RowError]

_TEXT_CAP, _MODEL_CAP, _MODELS_CAP = 512, 256, 2000  # as rows.py enforces them
_SEEN_CAP = 1 << 14  # distinct labels and dates remembered: every day of 45 years
_DATE_FIELDS = ("issued_on", "expires_on", "status_changed_on")
_columns = operator.itemgetter(*FIELDS, "digest")  # the certificates table's column order
# The fast path below unpacks values by position: both orders are the digest's and the table's.
assert COLUMNS == FIELDS  # nosec B101 # a test holds it too; a mismatch would mix up fields


class _Unclean(Exception):
    """Not plainly clean: the row goes the validating way, which knows what is wrong."""


def record_maker(today: date, *, postgres: bool, pipe_models: bool) -> Maker:
    """The per-row conversion for one import: `pipe_models` for CSV's "a|b" models column.

    Dates go to asyncpg as `date`s and to SQLite as ISO text, as SQLAlchemy's Date type
    stores them; the models as JSON text on both.
    """
    clean = clean_record_maker(today, postgres=postgres, pipe_models=pipe_models)

    def make(line: int, values: Values) -> Record | RowError:
        record = clean(line, values)
        if record is not None:
            return record
        row = certificate_row(line, fields_of(values, pipe_models), today)
        return row if isinstance(row, RowError) else record_of(row, postgres=postgres)

    return make


def clean_record_maker(
    today: date, *, postgres: bool, pipe_models: bool
) -> Callable[[int, Values], Record | None]:
    """The record of a plainly clean row, made without validating objects; None for any other
    row, which then needs `certificate_row` to say what it means (or what is wrong with it)."""
    first, after = str(FIRST_YEAR), str(today.year + 1)
    # Labels and dates repeat on every row: each is parsed once per import (bounded below).
    statuses: dict[str, str] = {}
    days: dict[str | None, tuple[date, str] | None] = {None: None}
    day_at = 0 if postgres else 1  # in a `_day` pair
    blake2b, quoted = hashlib.blake2b, encode_basestring_ascii

    def fast(line: int, values: Values) -> Record:
        # Every check below either passes a value that rows.py would take unchanged, or
        # raises (_Unclean, or a TypeError/AttributeError on a value of the wrong type).
        (cert_no, label, holder, manufacturer, factory, code, product, models, *_) = values
        (issued, expires, changed, reason) = values[8:]
        # Lexical order is numeric order on 16 digits: the year is between the first and now.
        if not (len(cert_no) == 16 and cert_no.isdigit() and cert_no.isascii()):
            raise _Unclean
        if not first <= cert_no < after:
            raise _Unclean
        status = statuses.get(label) or _status(statuses, label)
        holder = holder.strip()
        if not holder:
            raise _Unclean
        # Inline, not a helper: this runs five times a row. Blank is None, as in rows.py.
        manufacturer = None if manufacturer is None else manufacturer.strip() or None
        factory = None if factory is None else factory.strip() or None
        product = None if product is None else product.strip() or None
        reason = None if reason is None else reason.strip() or None
        if code is None or code == "":
            code = cert_no[6:10]  # none given: the number's own product code
        elif not (len(code) == 4 and code.isdigit() and code.isascii()):
            raise _Unclean
        if models is None:
            kept = []
        elif pipe_models:
            kept = list(filter(None, map(str.strip, models.split("|"))))
        elif type(models) is list:
            kept = list(filter(None, map(str.strip, models)))  # TypeError on a non-string
        else:
            raise _Unclean
        issued = days[issued] if issued in days else _day(days, issued)
        expires = days[expires] if expires in days else _day(days, expires)
        changed = days[changed] if changed in days else _day(days, changed)
        text = "\x1f".join(
            (
                cert_no,
                status,
                holder,
                manufacturer or "\x00",
                factory or "\x00",
                code,
                product or "\x00",
                "\x1e".join(kept),
                issued[1] if issued else "\x00",
                expires[1] if expires else "\x00",
                changed[1] if changed else "\x00",
                reason or "\x00",
            )
        )
        absent = (
            (manufacturer is None)
            + (factory is None)
            + (product is None)
            + (issued is None)
            + (expires is None)
            + (changed is None)
            + (reason is None)
        )
        if text.count("\x00") != absent:  # a NUL in a field: rows.py says which one
            raise _Unclean
        # Under the smallest cap, the whole row cannot break any: the usual row is shorter.
        if len(text) > _MODEL_CAP and _over_caps(
            kept, holder, manufacturer, factory, product, reason
        ):
            raise _Unclean
        # A lone surrogate cannot be encoded: UnicodeEncodeError, and rows.py says where.
        digest = blake2b(text.encode(), digest_size=16).hexdigest()
        return (
            line,
            cert_no,
            status,
            holder,
            manufacturer,
            factory,
            code,
            product,
            "[" + ", ".join(map(quoted, kept)) + "]",  # json.dumps(kept), at a third of its cost
            issued[day_at] if issued else None,
            expires[day_at] if expires else None,
            changed[day_at] if changed else None,
            reason,
            digest,
        )

    def clean(line: int, values: Values) -> Record | None:
        try:
            return fast(line, values)
        except (_Unclean, TypeError, AttributeError, ValueError, UnicodeEncodeError):
            return None

    return clean


def fields_of(values: Values, pipe_models: bool) -> dict[str, object]:
    """The row's fields as `certificate_row` reads them (an absent one is None either way)."""
    fields = dict(zip(COLUMNS, values, strict=True))
    if pipe_models and isinstance(fields["models"], str):
        fields["models"] = fields["models"].split("|")
    return fields


def _over_caps(models: list[str], *texts: str | None) -> bool:
    return (
        len(models) > _MODELS_CAP
        or (bool(models) and max(map(len, models)) > _MODEL_CAP)
        or any(text is not None and len(text) > _TEXT_CAP for text in texts)
    )


def _status(seen: dict[str, str], label: str) -> str:
    status = status_of(label)
    if status is None:
        raise _Unclean
    if len(seen) >= _SEEN_CAP:
        seen.clear()
    seen[label] = status.value
    return status.value


def _day(seen: dict[str | None, tuple[date, str] | None], text: str) -> tuple[date, str] | None:
    day = parse_date(text)  # ValueError when not YYYY-MM-DD; AttributeError on a non-string
    if len(seen) >= _SEEN_CAP:
        seen.clear()
        seen[None] = None
    seen[text] = parsed = None if day is None else (day, day.isoformat())
    return parsed


def record_of(row: SnapshotRow, *, postgres: bool) -> Record:
    """The staging record of an already validated row (what the fast path makes directly)."""
    values = row_values(row.certificate)
    values["models"] = json.dumps(values["models"])  # asyncpg takes JSON as text
    if not postgres:
        for name in _DATE_FIELDS:
            day: date | None = values[name]
            if day is not None:
                values[name] = day.isoformat()
    return (row.line, *_columns(values))
