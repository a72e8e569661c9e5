"""CSV snapshots: the header's columns, then each record with the physical line it starts on.

reader.py gives this the file's lines (each bounded, blank ones counted) and says what shape a
record takes: a mapping of its fields, or its raw values in COLUMNS order for an import.
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Callable, Iterator
from typing import TypeVar

from certcheck.snapshots.formats import COLUMNS, REQUIRED_COLUMNS, SnapshotError
from certcheck.snapshots.rows import RowError

_T = TypeVar("_T")
# The columns the header names, each with its index in a record; and the record's width.
Columns = list[tuple[str, int]]
# Makes one shaped record from a record's fields; made once per file from its columns.
Shape = Callable[[Columns], Callable[[list[str]], _T]]


def csv_records(
    lines: Iterator[str], max_blank: int, shape: Shape[_T]
) -> Iterator[tuple[int, _T] | RowError]:
    """Each record, shaped, with the line it starts on; a ragged or broken one: a RowError.

    csv.reader's line_num counts physical lines read so far, so a record (even one with
    newlines inside quotes) starts on the line after the previous record ended.
    """
    reader = csv.reader(lines, strict=True)
    columns, width = _csv_columns(reader)
    shaped = shape(columns)
    cert_no_at = dict(columns)["cert_no"]
    empty = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(start, f"unreadable CSV record: {exc}")
            continue
        if len(row) == width and row[cert_no_at].strip():  # the common case: not blank
            yield start, shaped(row)
            continue
        if not "".join(row).strip():
            empty += 1  # blank lines and spreadsheets' trailing ",,,," rows: skipped, capped
            if empty > max_blank:
                raise SnapshotError(f"more than {max_blank} blank lines or empty rows")
            continue
        if len(row) != width:
            # The number still names the row (its column comes first in most files): kept.
            number = row[cert_no_at] if cert_no_at < len(row) else None
            message = f"expected {width} fields as in the header, found {len(row)}"
            yield RowError(start, message, number)
            continue
        yield start, shaped(row)


def as_fields(columns: Columns) -> Callable[[list[str]], dict[str, object]]:
    """A record as a mapping of the columns it has; the models split on "|"."""
    models_at = dict(columns).get("models")

    def fields(row: list[str]) -> dict[str, object]:
        mapped: dict[str, object] = {name: row[index] for name, index in columns}
        if models_at is not None:
            mapped["models"] = row[models_at].split("|")
        return mapped

    return fields


def as_values(columns: Columns) -> Callable[[list[str]], tuple[str | None, ...]]:
    """A record's raw values in COLUMNS order, None for a column the file lacks; the models
    left as their "a|b" text (records.py splits them)."""
    at = dict(columns)
    if all(name in at for name in COLUMNS):
        return operator.itemgetter(*(at[name] for name in COLUMNS))
    # Index -1 is a None appended to each record: the value of every missing column.
    pick = operator.itemgetter(*(at.get(name, -1) for name in COLUMNS))

    def values(row: list[str]) -> tuple[str | None, ...]:
        padded: list[str | None] = [*row, None]
        return pick(padded)  # type: ignore[no-any-return]

    return values


def _csv_columns(reader: Iterator[list[str]]) -> tuple[Columns, int]:
    try:
        header = next((row for row in reader if any(field.strip() for field in row)), [])
    except csv.Error as exc:
        raise SnapshotError(f"unreadable CSV header: {exc}") from exc
    names = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise SnapshotError(
            f"the CSV header lacks the required column(s) {', '.join(missing)}; "
            f"found: {show(', '.join(names)) or 'no header'}"
        )
    doubled = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
    if doubled:
        raise SnapshotError(f"the CSV header names {', '.join(doubled)} more than once")
    return [(name, index) for index, name in enumerate(names) if name in COLUMNS], len(header)


def show(text: str, most: int = 200) -> str:
    """At most `most` characters of what the file holds, for a message."""
    return text if len(text) <= most else text[:most] + "..."
