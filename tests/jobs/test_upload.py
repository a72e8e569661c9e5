"""Receiving an upload: gunzip on the fly, the caps, a gzip bomb, the digest."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterable

import pytest

from certcheck.errors import UploadRefused
from certcheck.jobs.upload import UploadLimits, receive

ROOMY = UploadLimits(max_upload_bytes=1 << 30, max_content_bytes=1 << 30)


async def body_of(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def pieces(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def spooled(
    parts: Iterable[bytes], *, gzipped: bool, limits: UploadLimits = ROOMY, media: str = "ndjson"
) -> tuple[bytes, str]:
    async with receive(body_of(parts), media=media, gzipped=gzipped, limits=limits) as upload:
        return upload.file.read(), upload.digest


class TestReceive:
    async def test_plain_content_is_spooled_as_sent(self) -> None:
        content, _ = await spooled([b"a\n", b"b\n"], gzipped=False)
        assert content == b"a\nb\n"

    async def test_gzip_is_gunzipped_in_pieces(self) -> None:
        data = b'{"cert_no":"2024010901234567"}\n' * 5000
        content, _ = await spooled(pieces(gzip.compress(data), 777), gzipped=True)
        assert content == data

    async def test_concatenated_gzip_members_and_zero_padding(self) -> None:
        body = gzip.compress(b"a\n") + gzip.compress(b"b\n") + b"\0" * 16
        content, _ = await spooled([body], gzipped=True)
        assert content == b"a\nb\n"

    async def test_same_content_same_digest_however_sent(self) -> None:
        data = b"x\n" * 100
        _, plain = await spooled([data], gzipped=False)
        _, zipped = await spooled([gzip.compress(data)], gzipped=True)
        _, as_csv = await spooled([data], gzipped=False, media="csv")
        assert plain == zipped != as_csv

    @pytest.mark.parametrize(
        "body",
        [gzip.compress(b"a\n" * 100)[:-12], b"not gzip at all", gzip.compress(b"a") + b"junk"],
        ids=["truncated", "not-gzip", "trailing-garbage"],
    )
    async def test_broken_gzip_is_422(self, body: bytes) -> None:
        with pytest.raises(UploadRefused) as refused:
            await spooled([body], gzipped=True)
        assert (refused.value.status, refused.value.code) == (422, "INVALID_GZIP")


class TestCaps:
    async def test_bytes_sent_over_the_cap_is_413(self) -> None:
        limits = UploadLimits(max_upload_bytes=1000, max_content_bytes=1 << 30)
        with pytest.raises(UploadRefused) as refused:
            await spooled([b"x" * 600, b"x" * 600], gzipped=False, limits=limits)
        assert (refused.value.status, refused.value.code) == (413, "UPLOAD_TOO_LARGE")

    async def test_gzip_bomb_is_413_quickly_and_memory_does_not_follow(self) -> None:
        # 1 GiB of zeros, about 1 MiB compressed: refused at the 8 MiB content cap.
        squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
        bomb = b"".join(squeeze.compress(b"\0" * (1 << 20)) for _ in range(1024))
        bomb += squeeze.flush()
        limits = UploadLimits(max_upload_bytes=1 << 30, max_content_bytes=8 << 20)
        tracemalloc.start()
        started = time.perf_counter()
        try:
            with pytest.raises(UploadRefused) as refused:
                await spooled(pieces(bomb, 65536), gzipped=True, limits=limits)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (refused.value.status, refused.value.code) == (413, "UPLOAD_TOO_LARGE")
        assert time.perf_counter() - started < 2
        assert peak < 6 << 20  # a few gunzipped blocks, never the content
