"""Streaming reader of registry snapshot files (CSV or JSON Lines, optionally gzip), row by row.

A bad row is a `RowError` value and the rest still counts; `SnapshotError` means the whole
file is unusable; `UnsupportedFormat` means we cannot tell what the file is.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO, TypeVar

from certcheck.snapshots.csvfile import Shape, as_fields, as_values, csv_records
from certcheck.snapshots.formats import (
    COLUMNS,
    REQUIRED_COLUMNS,
    SnapshotError,
    SnapshotFormat,
    SnapshotKind,
    UnsupportedFormat,
    detect_format,
)
from certcheck.snapshots.records import Record, Values, fields_of, record_maker
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
    "SnapshotRows",
    "SnapshotSource",
    "UnsupportedFormat",
    "certificate_row",
    "certificate_to_snapshot_dict",
    "detect_format",
    "iter_records",
    "iter_snapshot",
    "unique_members",
]


_T = TypeVar("_T")
# A row's raw fields and the line it starts on, before any validation.
RawRecord = tuple[int, Mapping[str, object]] | RowError
# A row's raw values in COLUMNS order and the line it starts on, before any validation.
RawValues = tuple[int, Values] | RowError
# A physical line: its number and text, or None for a line too long to be read whole.
Line = tuple[int, str | None]


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What reading one snapshot may cost, whatever the file holds."""

    # A line longer than any valid certificate could be is never held in memory whole.
    max_line_chars: int = 1 << 22
    # Blank lines are skipped, but each costs a read: a file of nothing else is refused.
    max_blank_lines: int = 100_000


def iter_snapshot(
    stream: BinaryIO, fmt: SnapshotFormat, *, today: date, limits: ReadLimits = ReadLimits()
) -> SnapshotRows:
    """Each row as a `SnapshotRow` or `RowError`, in file order, holding one row at a time.

    `line` is the physical line (1-based, the CSV header being line 1) where the row starts.

    Raises `SnapshotError` part-way when the rest of the file cannot be read; the caller
    must then discard what it has taken. The caller's stream is left open.
    """
    values = _read(stream, fmt, limits, as_values, _json_values)
    return SnapshotRows(values, today, source=SnapshotSource(stream, fmt, limits))


@dataclass(frozen=True, slots=True)
class SnapshotSource:
    """Where a `SnapshotRows` reads from: what another process needs to read the same rows."""

    stream: BinaryIO
    fmt: SnapshotFormat
    limits: ReadLimits


class SnapshotRows(Iterator[SnapshotRow | RowError]):
    """A snapshot's rows: iterated, each a `SnapshotRow` or `RowError`; for an import, the same
    rows straight as staging records (`records`), skipping the `Certificate` objects."""

    def __init__(self, values: Iterator[RawValues], today: date, *, source: SnapshotSource) -> None:
        self._values, self.today, self.source = values, today, source
        self._pipe_models = source.fmt.kind is SnapshotKind.CSV
        self.started = False  # a row was taken: the stream is no longer at the first row

    def __next__(self) -> SnapshotRow | RowError:
        self.started = True
        item = next(self._values)
        if isinstance(item, RowError):
            return self._error(item)
        line, values = item
        return certificate_row(line, fields_of(values, self._pipe_models), self.today)

    def records(self, *, postgres: bool) -> Iterator[Record | RowError]:
        """The rest of the rows as staging records (records.py) or `RowError`s, in file order."""
        self.started = True
        make = record_maker(self.today, postgres=postgres, pipe_models=self._pipe_models)
        for item in self._values:
            yield make(*item) if type(item) is tuple else self._error(item)  # type: ignore[arg-type]

    def _error(self, error: RowError) -> RowError:
        if error.cert_no is None:
            return error
        # The raw text of a ragged row's number column: kept if it reads as a number.
        return RowError(error.line, error.message, readable_cert_no(error.cert_no, self.today))


def iter_records(
    stream: BinaryIO, fmt: SnapshotFormat, limits: ReadLimits = ReadLimits()
) -> Iterator[RawRecord]:
    """Each row's raw fields as `(line, fields)`, not validated, or a `RowError` (as above).

    A RowError's `cert_no` here is the raw text of its number column, not yet normalised.
    """
    return _read(stream, fmt, limits, as_fields, _json_fields)


def _read(
    stream: BinaryIO,
    fmt: SnapshotFormat,
    limits: ReadLimits,
    csv_shape: Shape[_T],
    json_shape: Callable[[dict[str, object]], _T],
) -> Iterator[tuple[int, _T] | RowError]:
    # mode="rb" explicitly: GzipFile otherwise copies the stream's mode, and a "w+b"
    # temporary file holding an upload would be opened for writing.
    binary: BinaryIO | gzip.GzipFile = (
        gzip.GzipFile(fileobj=stream, mode="rb") if fmt.gzip else stream
    )
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        if fmt.kind is SnapshotKind.CSV:
            yield from csv_records(_csv_lines(text, limits), limits.max_blank_lines, csv_shape)
        else:
            yield from _jsonl_records(_bounded_lines(text, limits), json_shape)
    finally:
        with contextlib.suppress(ValueError):  # the caller may have closed the stream already
            text.detach()
            if binary is not stream:
                binary.close()


# What a broken file raises while its text is read: turned into one SnapshotError.
_UNREADABLE = (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError)


def _unreadable(exc: Exception, line: int) -> SnapshotError:
    what = "invalid UTF-8" if isinstance(exc, UnicodeDecodeError) else "broken gzip data"
    return SnapshotError(f"{what} after line {line}: {exc}")


def _bounded_lines(text: io.TextIOWrapper, limits: ReadLimits) -> Iterator[Line]:
    """The text's lines, none held longer than the cap; too many blank lines: SnapshotError."""
    most, number, blank = limits.max_line_chars, 0, 0
    try:
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
    except _UNREADABLE as exc:
        raise _unreadable(exc, number) from exc


def _csv_lines(text: io.TextIOWrapper, limits: ReadLimits) -> Iterator[str]:
    """As `_bounded_lines`, for csv.reader: a line too long fails the file there and then (a
    quoted field may go on on the next line, so it cannot be skipped)."""
    most, number, blank = limits.max_line_chars, 0, 0
    try:
        while line := text.readline(most):
            number += 1
            if len(line) == most and line[-1] not in "\r\n":
                raise SnapshotError(f"line {number} is too long for a certificate")
            if line[0].isspace() and not line.strip():  # blank lines start with a space
                blank += 1
                if blank > limits.max_blank_lines:
                    raise SnapshotError(f"more than {limits.max_blank_lines} blank lines")
            yield line
    except _UNREADABLE as exc:
        raise _unreadable(exc, number) from exc


def _jsonl_records(
    lines: Iterator[Line], shape: Callable[[dict[str, object]], _T]
) -> Iterator[tuple[int, _T] | RowError]:
    for number, line in lines:
        if line is None:
            yield RowError(number, "line too long for a certificate")
        elif line.strip():
            yield _json_record(number, line, shape)


def _json_record(
    number: int, line: str, shape: Callable[[dict[str, object]], _T]
) -> tuple[int, _T] | RowError:
    try:
        value = json.loads(line, object_pairs_hook=unique_members)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return RowError(number, f"not valid JSON: {exc}")
    if not isinstance(value, dict):
        return RowError(number, f"expected a JSON object, found {type(value).__name__}")
    return number, shape(value)


def _json_fields(value: dict[str, object]) -> Mapping[str, object]:
    return value


def _json_values(value: dict[str, object]) -> Values:
    return tuple(map(value.get, COLUMNS))


def unique_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    members = dict(pairs)
    if len(members) != len(pairs):
        # Two "status" members would leave the row's meaning to the parser's whim.
        raise ValueError("a member name appears twice")
    return members
