"""Cutting a spooled upload into chunks of records, holding one chunk at a time.

NDJSON lines are kept as sent; CSV rows become the JSON object their header describes (empty
cells are left out, as absent). Blank lines are skipped and not counted; a UTF-8 BOM and CRLF
line ends are accepted. Lines that cannot be read are kept with the reason, to be answered
MALFORMED with their line number; so are lines holding a NUL character or a lone surrogate,
which no database text column stores. Only an upload as a whole can be refused (UploadRefused).
`LineGate` applies the line caps to content as it streams in, before anything is framed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from certcheck.db.types import first_unstorable
from certcheck.errors import UploadRefused
from certcheck.jobs.chunks import InputChunk
from certcheck.jobs.records import UploadFormat

_BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"

# (line number, record, why it cannot be read or None)
_Record = tuple[int, bytes, str | None]


@dataclass(frozen=True, slots=True)
class FramingLimits:
    chunk_lines: int
    max_lines: int
    max_line_bytes: int
    max_blank_lines: int = sys.maxsize  # blank lines cost a scan each but count nowhere else


def frame(
    stream: BinaryIO, fmt: UploadFormat, limits: FramingLimits, fields: Collection[str]
) -> Iterator[InputChunk]:
    """The upload's records in chunks of `limits.chunk_lines`; `fields` are a line's members."""
    if fmt is UploadFormat.CSV:
        records = _csv_records(stream, limits.max_line_bytes, fields)
    else:
        records = _ndjson_records(stream, limits.max_line_bytes)
    return _chunked(records, limits)


def _chunked(records: Iterable[_Record], limits: FramingLimits) -> Iterator[InputChunk]:
    lines: list[int] = []
    payloads: list[bytes] = []
    errors: dict[int, str] = {}
    index = taken = 0
    for line, payload, error in records:
        if error is not None:
            errors[len(lines)] = error
        lines.append(line)
        payloads.append(payload)
        if len(lines) == limits.chunk_lines:
            taken = _count(taken + len(lines), limits.max_lines)
            yield InputChunk(index, lines, payloads, errors)
            index, lines, payloads, errors = index + 1, [], [], {}
    if lines:
        _count(taken + len(lines), limits.max_lines)
        yield InputChunk(index, lines, payloads, errors)


def _count(lines: int, most: int) -> int:
    if lines > most:
        raise too_many_lines(most)
    return lines


def too_many_lines(most: int) -> UploadRefused:
    return UploadRefused(
        f"the upload has more than {most} lines; split it into several jobs",
        code="TOO_MANY_LINES",
        status=413,
    )


def line_too_long(line: int, most: int) -> UploadRefused:
    return UploadRefused(
        f"line {line} is longer than {most} bytes", code="LINE_TOO_LONG", status=413
    )


def _ndjson_records(stream: BinaryIO, most: int) -> Iterator[_Record]:
    head = stream.read(len(_BOM))
    tail = b"" if head == _BOM else head
    number = 0
    while block := stream.read(_BLOCK):
        parts = (tail + block).split(b"\n")
        tail = parts.pop()
        for part in parts:
            number += 1
            if len(part) > most:
                raise line_too_long(number, most)
            if part[-1:] == b"\r":
                part = part[:-1]
            if part and not part.isspace():
                yield number, part, _unstorable(part)
        if len(tail) > most:
            raise line_too_long(number + 1, most)
    if tail and not tail.isspace():
        tail = tail.removesuffix(b"\r")
        yield number + 1, tail, _unstorable(tail)


_UNSTORABLE = "the line holds a NUL character or a lone surrogate, which cannot be stored"


def _unstorable(record: bytes) -> str | None:
    """Why a JSON line's strings cannot be stored ("\\u0000", a lone "\\ud800"), or None."""
    if b"\\u" not in record:
        return None  # the common case: no escape that could spell one
    try:
        value = json.loads(record)
    except (ValueError, RecursionError):
        return None  # not JSON: the line's parser says why
    return None if first_unstorable(value) is None else _UNSTORABLE


def _csv_records(stream: BinaryIO, most: int, fields: Collection[str]) -> Iterator[_Record]:
    # surrogateescape: a line that is not UTF-8 becomes one MALFORMED line, not a failed upload.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(_bounded_lines(text, most), strict=True)
        names = _header(reader, fields)
        while True:
            start = reader.line_num + 1  # the line after the previous record ended
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, b"", f"unreadable CSV record: {exc}"
                continue
            if any(cell.strip() for cell in row):
                yield (start, *_json_object(names, row))
    finally:
        text.detach()


def _bounded_lines(text: io.TextIOWrapper, most: int) -> Iterator[str]:
    """The text's lines, refusing one so long that reading it would fill the memory."""
    number = 0
    while line := text.readline(most + 1):
        number += 1
        if len(line) > most:
            raise line_too_long(number, most)
        yield line


def _header(reader: Iterator[list[str]], fields: Collection[str]) -> list[str]:
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        raise UploadRefused(f"unreadable CSV header: {exc}", code="INVALID_CSV_HEADER") from exc
    if header is None:
        raise UploadRefused("the upload holds no lines", code="EMPTY_UPLOAD")
    names = [cell.strip().lower() for cell in header]
    unknown = [name for name in names if name not in fields]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if unknown or doubled:
        problem = (
            f"unknown column(s) {', '.join(repr(n) for n in unknown)}"
            if unknown
            else f"column(s) named twice: {', '.join(doubled)}"
        )
        raise UploadRefused(
            f"the CSV header must name fields of a verify request ({', '.join(sorted(fields))})"
            f"; {problem}",
            code="INVALID_CSV_HEADER",
        )
    return names


def _json_object(names: list[str], row: list[str]) -> tuple[bytes, str | None]:
    if len(row) != len(names):
        return b"", f"expected {len(names)} fields as in the header, found {len(row)}"
    members = {name: cell for name, cell in zip(names, row, strict=True) if cell}
    if any("\x00" in cell for cell in members.values()):
        return b"", _UNSTORABLE
    try:
        return json.dumps(members, ensure_ascii=False).encode(), None
    except UnicodeEncodeError:
        return b"", "the line is not valid UTF-8"
