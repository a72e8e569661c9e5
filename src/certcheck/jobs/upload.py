"""Receiving an upload: gunzip as it arrives, cap the bytes sent and the bytes they expand to,
hash the content, and spool it to a temporary file, so memory holds one block at a time."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from certcheck.errors import UploadRefused

# The most one gunzip step may produce: a gzip bomb expands a block at a time, never at once.
_OUT_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_upload_bytes: int  # as sent
    max_content_bytes: int  # after gunzip
    spool_dir: Path | None = None


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
    """Spool `body`; raises UploadRefused (413 or 422) as soon as it is over a cap or broken."""
    digest = hashlib.sha256(media.encode() + b"\n")
    sent = written = 0
    gunzip = _Gunzip() if gzipped else None
    with tempfile.TemporaryFile(dir=limits.spool_dir) as spool:
        async for data in body:
            sent += len(data)
            if sent > limits.max_upload_bytes:
                raise too_large("the upload", limits.max_upload_bytes)
            for block in gunzip.feed(data) if gunzip else (data,):
                written += len(block)
                if written > limits.max_content_bytes:
                    raise too_large("the upload's content after gunzip", limits.max_content_bytes)
                digest.update(block)
                spool.write(block)
        if gunzip is not None:
            gunzip.finish()
        spool.seek(0)
        yield Upload(file=spool, digest=digest.hexdigest(), content_bytes=written)


def _broken(detail: str) -> UploadRefused:
    return UploadRefused(f"the gzip content is broken: {detail}", code="INVALID_GZIP")


class _Gunzip:
    """Streaming gunzip of one or more concatenated members, a bounded block at a time."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)
        self._fed = False  # the current member has begun
        self._padding = False  # zeros after the last member, as some gzip writers add

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._padding:
            if data.strip(b"\0"):
                raise _broken("data follows the zeros after the end of the gzip stream")
            return
        self._fed = self._fed or bool(data)
        try:
            while True:
                block = self._inflate.decompress(data, _OUT_BLOCK)
                if block:
                    yield block
                data = self._inflate.unconsumed_tail
                if self._inflate.eof:
                    data = self._next_member()
                if not data and len(block) < _OUT_BLOCK:
                    return  # a full block may leave output behind: ask again until it is short
        except zlib.error as exc:
            raise _broken(str(exc)) from exc

    def _next_member(self) -> bytes:
        rest = self._inflate.unused_data
        self._inflate = zlib.decompressobj(wbits=31)
        self._fed = bool(rest)
        if rest and not rest.strip(b"\0"):
            self._fed, self._padding = False, True
            return b""
        return rest

    def finish(self) -> None:
        if self._fed and not self._inflate.eof:
            raise _broken("it ends before the end of the gzip stream")
