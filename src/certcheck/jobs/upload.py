"""Receiving an upload: gunzip as it arrives, cap the bytes sent, the bytes they expand to and
the lines they hold, hash the content, and spool it to a temporary file, so memory holds one
block at a time and the event loop none of the work."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
import zlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from certcheck.errors import UploadRefused
from certcheck.jobs.framing import FramingLimits
from certcheck.jobs.linecaps import LineGate

# The most one gunzip call may produce: a gzip bomb expands a block at a time, never at once.
# Small enough that the line gate's split of a block of newlines stays a few MiB.
_OUT_BLOCK = 256 << 10
# Content taken per trip to the worker thread, and bytes sent gathered before one.
_STEP = 4 << 20
_PIECE = 256 << 10


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_upload_bytes: int  # as sent
    max_content_bytes: int  # after gunzip
    spool_dir: Path | None = None
    lines: FramingLimits | None = None  # line caps applied as the content streams in


@dataclass(frozen=True, slots=True)
class Upload:
    file: BinaryIO  # the content, gunzipped, positioned at its start
    digest: str  # SHA-256 of the media type and the content: what Idempotency-Key compares
    content_bytes: int


def too_large(what: str, most: int) -> UploadRefused:
    return UploadRefused(
        f"{what} is over the limit of {most} bytes", code="UPLOAD_TOO_LARGE", status=413
    )


@contextlib.asynccontextmanager
async def receive(
    body: AsyncIterable[bytes], *, media: str, gzipped: bool, limits: UploadLimits
) -> AsyncIterator[Upload]:
    """Spool `body`; raises UploadRefused (413 or 422) as soon as it is over a cap or broken.

    Gunzip, line caps, hashing and writing run in a worker thread one bounded step at a time
    (at most `_STEP` bytes of content each): the event loop only collects what arrives.
    """
    sent = 0
    pending = bytearray()  # what arrived since the last trip to the thread
    with tempfile.TemporaryFile(dir=limits.spool_dir) as spool:
        intake = _Intake(spool, media, gzipped, limits)
        async for data in body:
            sent += len(data)
            if sent > limits.max_upload_bytes:
                raise too_large("the upload", limits.max_upload_bytes)
            pending += data
            if len(pending) >= _PIECE:
                await _absorb(intake, bytes(pending))
                pending.clear()
        await _absorb(intake, bytes(pending))
        await asyncio.to_thread(intake.finish)
        spool.seek(0)
        yield Upload(file=spool, digest=intake.digest.hexdigest(), content_bytes=intake.written)


async def _absorb(intake: _Intake, data: bytes) -> None:
    intake.give(data)
    while await asyncio.to_thread(intake.step):
        pass


class _Intake:
    """Sent bytes in, content out: gunzipped, capped, hashed and spooled, a step at a time."""

    def __init__(self, spool: BinaryIO, media: str, gzipped: bool, limits: UploadLimits) -> None:
        self.digest = hashlib.sha256(media.encode() + b"\n")
        self.written = 0
        self._spool = spool
        self._limits = limits
        self._gunzip = _Gunzip() if gzipped else None
        self._plain = b""
        header = media == "csv"
        self._lines = None if limits.lines is None else LineGate(limits.lines, header=header)

    def give(self, data: bytes) -> None:
        if self._gunzip is not None:
            self._gunzip.give(data)
        else:
            self._plain = data

    def step(self) -> bool:
        """Take up to `_STEP` bytes of content; True while some of what was given is left."""
        for _ in range(_STEP // _OUT_BLOCK):
            block = self._next_block()
            if block is None:
                return False
            self._take(block)
        return True

    def _next_block(self) -> bytes | None:
        if self._gunzip is not None:
            return self._gunzip.take()
        block, self._plain = self._plain[:_OUT_BLOCK], self._plain[_OUT_BLOCK:]
        return block or None

    def _take(self, block: bytes) -> None:
        self.written += len(block)
        if self.written > self._limits.max_content_bytes:
            raise too_large("the upload's content after gunzip", self._limits.max_content_bytes)
        if self._lines is not None:
            self._lines.feed(block)
        self.digest.update(block)
        self._spool.write(block)

    def finish(self) -> None:
        if self._gunzip is not None:
            self._gunzip.finish()
        if self._lines is not None:
            self._lines.finish()


def _broken(detail: str) -> UploadRefused:
    return UploadRefused(f"the gzip content is broken: {detail}", code="INVALID_GZIP")


class _Gunzip:
    """Streaming gunzip of one or more concatenated members, a bounded block at a time."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)
        self._fed = False  # the current member has begun
        self._padding = False  # zeros after the last member, as some gzip writers add
        self._input = b""
        self._full = False  # the last block was full: zlib may hold more output

    def give(self, data: bytes) -> None:
        if self._padding:
            if data.strip(b"\0"):
                raise _broken("data follows the zeros after the end of the gzip stream")
            return
        self._fed = self._fed or bool(data)
        self._input = data

    def take(self) -> bytes | None:
        """The next block (at most `_OUT_BLOCK` bytes) of what was given, None when done."""
        try:
            while self._input or self._full:
                block = self._inflate.decompress(self._input, _OUT_BLOCK)
                self._input = self._inflate.unconsumed_tail
                self._full = len(block) == _OUT_BLOCK
                if self._inflate.eof:
                    self._input = self._next_member()
                if block:
                    return block
        except zlib.error as exc:
            raise _broken(str(exc)) from exc
        return None

    def _next_member(self) -> bytes:
        rest = self._inflate.unused_data
        self._inflate = zlib.decompressobj(wbits=31)
        self._fed = bool(rest)
        self._full = False
        if rest and not rest.strip(b"\0"):
            self._fed, self._padding = False, True
            return b""
        return rest

    def finish(self) -> None:
        if self._fed and not self._inflate.eof:
            raise _broken("it ends before the end of the gzip stream")
