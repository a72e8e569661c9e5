"""Writing registry snapshot files (CSV or JSON Lines, optionally gzip), row by row."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from certcheck.files import whole_file
from certcheck.snapshots.reader import (
    COLUMNS,
    SnapshotKind,
    certificate_to_snapshot_dict,
    detect_format,
)
from certcheck.verification.records import Certificate


def write_snapshot(path: Path, certificates: Iterable[Certificate]) -> int:
    """Write a snapshot in the format its name says (.gz: gzip); the number of rows written.

    The file is written under a temporary name and renamed, so it is whole or absent.
    """
    fmt = detect_format(filename=path.name)
    with whole_file(path) as raw, _text_file(raw, fmt.gzip) as out:
        write = _write_csv if fmt.kind is SnapshotKind.CSV else _write_jsonl
        return write(out, certificates)


@contextlib.contextmanager
def _text_file(raw: BinaryIO, gzipped: bool) -> Iterator[TextIO]:
    # mtime=0 and no file name in the gzip header: the same rows give the same bytes.
    binary: BinaryIO | gzip.GzipFile = (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
        if gzipped
        else raw
    )
    with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
        yield text


def _write_csv(out: TextIO, certificates: Iterable[Certificate]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    written = 0
    for cert in certificates:
        if any("|" in model for model in cert.models):
            raise ValueError(f"{cert.cert_no}: a model contains '|', the CSV model separator")
        row = certificate_to_snapshot_dict(cert)
        row["models"] = "|".join(cert.models)
        writer.writerow("" if row[column] is None else row[column] for column in COLUMNS)
        written += 1
    return written


def _write_jsonl(out: TextIO, certificates: Iterable[Certificate]) -> int:
    written = 0
    for cert in certificates:
        out.write(json.dumps(certificate_to_snapshot_dict(cert), ensure_ascii=False) + "\n")
        written += 1
    return written
