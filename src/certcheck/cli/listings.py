"""`certcheck recheck`: a whole file re-checked in this process, chunk by chunk, through the same
framing, Checker and result lines as a job, with nothing stored but the output."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from certcheck.checking import Checker
from certcheck.files import whole_file
from certcheck.jobs.framing import FramingLimits, frame
from certcheck.jobs.linecaps import LineGate
from certcheck.jobs.processing import ChunkResult, LineCodec, process_chunk
from certcheck.jobs.records import UploadFormat
from certcheck.verification.records import Verdict

_SUFFIXES = {
    "csv": UploadFormat.CSV,
    "ndjson": UploadFormat.NDJSON,
    "jsonl": UploadFormat.NDJSON,
    "json": UploadFormat.NDJSON,
}


@dataclass
class Totals:
    lines: int = 0
    allow: int = 0
    block: int = 0
    review: int = 0
    invalid_lines: int = 0

    def add(self, result: ChunkResult) -> None:
        self.lines += len(result.decisions)
        self.allow += result.counts[Verdict.ALLOW]
        self.block += result.counts[Verdict.BLOCK]
        self.review += result.counts[Verdict.REVIEW]
        self.invalid_lines += result.invalid


def listing_format(path: Path, named: str | None) -> UploadFormat:
    """The format `named`, or the one the file name says (a .gz suffix aside)."""
    if named is not None:
        return UploadFormat(named)
    suffix = path.name.lower().removesuffix(".gz").rpartition(".")[2]
    if suffix not in _SUFFIXES:
        raise ValueError(f"{path}: cannot tell CSV from NDJSON by its name; use --format")
    return _SUFFIXES[suffix]


@contextlib.contextmanager
def open_listings(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes, gunzipped when it is gzip (by its first two bytes, not its name)."""
    with path.open("rb") as raw:
        if raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            raw.seek(0)
            yield raw


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[BinaryIO]:
    """stdout, or a file that is whole or absent: written aside, renamed when complete."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with whole_file(Path(path)) as out:
        yield out


async def recheck_stream(
    source: BinaryIO,
    fmt: UploadFormat,
    out: BinaryIO,
    checker: Checker,
    codec: LineCodec,
    *,
    limits: FramingLimits,
    on_chunk: Callable[[Totals], None] = lambda _: None,
) -> Totals:
    """Write one result line per listing of `source` to `out`, in order."""
    fields: Collection[str] = codec.fields
    gated = _Gated(source, LineGate(limits, header=fmt is UploadFormat.CSV))
    chunks = frame(cast(BinaryIO, io.BufferedReader(gated)), fmt, limits, fields)
    totals = Totals()
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        result = await process_chunk(chunk, checker, codec)
        await asyncio.to_thread(out.write, result.body)
        totals.add(result)
        on_chunk(totals)
    return totals


class _Gated(io.RawIOBase):
    """`source` as framing reads it, through the line caps an HTTP upload has (blank lines
    above all): a local file of nothing but newlines is refused, not scanned for minutes."""

    def __init__(self, source: BinaryIO, gate: LineGate) -> None:
        super().__init__()
        self._source = source
        self._gate = gate
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        if data:
            self._gate.feed(data)
        elif not self._ended:
            self._ended = True
            self._gate.finish()
        buffer[: len(data)] = data
        return len(data)
