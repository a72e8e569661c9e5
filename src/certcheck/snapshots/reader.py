"""Streaming reader of registry snapshot files (CSV or JSON Lines, optionally gzip), row by row.

A bad row is a `RowError` value and the rest still counts; `SnapshotError` means the whole
file is unusable; `UnsupportedFormat` means we cannot tell what the file is.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

from certcheck.snapshots.formats import (
    COLUMNS,
    REQUIRED_COLUMNS,
    SnapshotFormat,
    SnapshotKind,
    UnsupportedFormat,
    detect_format,
)
from certcheck.snapshots.rows import (
    RowError,
    SnapshotRow,
    certificate_row,
    certificate_to_snapshot_dict,
    readable_cert_no,
)

# What reading a snapshot takes, in one place: its formats (formats.py), its rows (rows.py).
__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "ReadLimits",
    "RowError",
    "SnapshotError",
    "SnapshotFormat",
    "SnapshotKind",
    "SnapshotRow",
    "UnsupportedFormat",
    "certificate_row",
    "certificate_to_snapshot_dict",
    "detect_format",
    "iter_records",
    "iter_snapshot",
    "unique_members",
]


class SnapshotError(ValueError):
    """The file as a whole cannot be trusted: a missing column, broken gzip, invalid UTF-8."""


# A row's raw fields and the line it starts on, before any validation.
Record = tuple[int, Mapping[str, object]] | RowError


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What reading one snapshot may cost, whatever the file holds."""

    # A line longer than any valid certificate could be is never held in memory whole.
    max_line_chars: int = 1 << 22
    # Blank lines are skipped, but each costs a read: a file of nothing else is refused.
    max_blank_lines: int = 100_000


def iter_snapshot(
    stream: BinaryIO, fmt: SnapshotFormat, *, today: date, limits: ReadLimits = ReadLimits()
) -> Iterator[SnapshotRow | RowError]:
    """Each row as a `SnapshotRow` or `RowError`, in file order, holding one row at a time.

    `line` is the physical line (1-based, the CSV header being line 1) where the row starts.

    Raises `SnapshotError` part-way when the rest of the file cannot be read; the caller
    must then discard what it has taken. The caller's stream is left open.
    """
    for record in iter_records(stream, fmt, limits):
        if not isinstance(record, RowError):
            yield certificate_row(*record, today)
        elif record.cert_no is not None:  # the raw text of a ragged row's number column
            yield RowError(record.line, record.message, readable_cert_no(record.cert_no, today))
        else:
            yield record


def iter_records(
    stream: BinaryIO, fmt: SnapshotFormat, limits: ReadLimits = ReadLimits()
) -> Iterator[Record]:
    """Each row's raw fields as `(line, fields)`, not validated, or a `RowError` (as above).

    A RowError's `cert_no` here is the raw text of its number column, not yet normalised.
    """
    # mode="rb" explicitly: GzipFile otherwise copies the stream's mode, and a "w+b"
    # temporary file holding an upload would be opened for writing.
    binary: BinaryIO | gzip.GzipFile = (
        gzip.GzipFile(fileobj=stream, mode="rb") if fmt.gzip else stream
    )
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    lines = _bounded_lines(text, limits)
    records = (
        _csv_records(lines, limits.max_blank_lines)
        if fmt.kind is SnapshotKind.CSV
        else _jsonl_records(lines)
    )
    line = 0
    try:
        for record in records:
            line = record.line if isinstance(record, RowError) else record[0]
            yield record
    except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        what = "invalid UTF-8" if isinstance(exc, UnicodeDecodeError) else "broken gzip data"
        raise SnapshotError(f"{what} after line {line}: {exc}") from exc
    finally:
        with contextlib.suppress(ValueError):  # the caller may have closed the stream already
            text.detach()
            if binary is not stream:
                binary.close()


# A physical line: its number and text, or None for a line too long to be read whole.
_Line = tuple[int, str | None]


def _bounded_lines(text: io.TextIOWrapper, limits: ReadLimits) -> Iterator[_Line]:
    """The text's lines, none held longer than the cap; too many blank lines: SnapshotError."""
    most, number, blank = limits.max_line_chars, 0, 0
    while line := text.readline(most):
        number += 1
        if len(line) == most and line[-1] not in "\r\n":
            yield number, None  # first: a reader that refuses the file reads no more of it
            while (rest := text.readline(most)) and rest[-1] not in "\r\n":
                pass  # the rest of the line, read and dropped a bounded piece at a time
            continue
        if not line.strip():
            blank += 1
            if blank > limits.max_blank_lines:
                raise SnapshotError(f"more than {limits.max_blank_lines} blank lines")
        yield number, line


def _csv_text(lines: Iterator[_Line]) -> Iterator[str]:
    for number, line in lines:
        if line is None:  # csv cannot skip it: a quoted field may go on on the next line
            raise SnapshotError(f"line {number} is too long for a certificate")
        yield line


def _csv_records(lines: Iterator[_Line], max_blank: int) -> Iterator[Record]:
    # csv.reader's line_num counts physical lines read so far, so a record (even one with
    # newlines inside quotes) starts on the line after the previous record ended.
    reader = csv.reader(_csv_text(lines), strict=True)
    columns, width = _csv_columns(reader)
    models_at = dict(columns).get("models")
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
        if not any(field.strip() for field in row):
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
        fields: dict[str, object] = {name: row[index] for name, index in columns}
        if models_at is not None:
            fields["models"] = row[models_at].split("|")
        yield start, fields


def _csv_columns(reader: Iterator[list[str]]) -> tuple[list[tuple[str, int]], int]:
    try:
        header = next((row for row in reader if any(field.strip() for field in row)), [])
    except csv.Error as exc:
        raise SnapshotError(f"unreadable CSV header: {exc}") from exc
    names = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise SnapshotError(
            f"the CSV header lacks the required column(s) {', '.join(missing)}; "
            f"found: {_show(', '.join(names)) or 'no header'}"
        )
    doubled = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
    if doubled:
        raise SnapshotError(f"the CSV header names {', '.join(doubled)} more than once")
    return [(name, index) for index, name in enumerate(names) if name in COLUMNS], len(header)


def _show(text: str, most: int = 200) -> str:
    """At most `most` characters of what the file holds, for a message."""
    return text if len(text) <= most else text[:most] + "..."


def _jsonl_records(lines: Iterator[_Line]) -> Iterator[Record]:
    for number, line in lines:
        if line is None:
            yield RowError(number, "line too long for a certificate")
        elif line.strip():
            yield _json_record(number, line)


def _json_record(number: int, line: str) -> Record:
    try:
        value = json.loads(line, object_pairs_hook=unique_members)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return RowError(number, f"not valid JSON: {exc}")
    if not isinstance(value, dict):
        return RowError(number, f"expected a JSON object, found {type(value).__name__}")
    return number, value


def unique_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    members = dict(pairs)
    if len(members) != len(pairs):
        # Two "status" members would leave the row's meaning to the parser's whim.
        raise ValueError("a member name appears twice")
    return members
