"""Snapshot file formats: CSV or JSON Lines, optionally gzip, told by file name or media type,
and the columns a snapshot has."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SnapshotKind(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class SnapshotFormat:
    kind: SnapshotKind
    gzip: bool


class UnsupportedFormat(ValueError):
    """Neither the file name nor the media type names a snapshot format we read."""


class SnapshotError(ValueError):
    """The file as a whole cannot be trusted: a missing column, broken gzip, invalid UTF-8."""


_SUFFIXES = {"csv": SnapshotKind.CSV, "jsonl": SnapshotKind.JSONL, "ndjson": SnapshotKind.JSONL}
_MEDIA_TYPES = {
    "text/csv": SnapshotKind.CSV,
    "application/x-ndjson": SnapshotKind.JSONL,
    "application/jsonl": SnapshotKind.JSONL,
}
# RFC 9110 asks recipients to treat "x-gzip" as "gzip".
_ENCODINGS = {"": False, "identity": False, "gzip": True, "x-gzip": True}
REQUIRED_COLUMNS = ("cert_no", "status", "holder")
COLUMNS = (
    *REQUIRED_COLUMNS,
    *("manufacturer", "factory", "product_code", "product_name", "models"),
    *("issued_on", "expires_on", "status_changed_on", "status_reason"),
)


def detect_format(
    *,
    filename: str | None = None,
    content_type: str | None = None,
    content_encoding: str | None = None,
) -> SnapshotFormat:
    """The format named by the file name or else the media type; `.gz` or gzip encoding: gzip.

    Either `.gz` or `Content-Encoding: gzip` means one gzip layer (clients label both).
    """
    name = (filename or "").strip().lower()
    _, dot, suffix = name.removesuffix(".gz").rpartition(".")
    kind = _SUFFIXES.get(suffix) if dot else None
    if kind is None and content_type:
        kind = _MEDIA_TYPES.get(content_type.partition(";")[0].strip().lower())
    if kind is None:
        raise UnsupportedFormat(
            f"cannot tell the snapshot format of {filename!r} ({content_type!r}): use .csv, "
            ".jsonl or .ndjson (optionally .gz), or text/csv or application/x-ndjson"
        )
    encoding = (content_encoding or "").strip().lower()
    if encoding not in _ENCODINGS:
        raise UnsupportedFormat(f"unsupported Content-Encoding {content_encoding!r}: use gzip")
    return SnapshotFormat(kind, name.endswith(".gz") or _ENCODINGS[encoding])
