"""Receiving an upload: gunzip on the fly, the caps, a gzip bomb, the digest."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import pytest

from certcheck.errors import UploadRefused
from certcheck.jobs.framing import FramingLimits
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


def gzip_of(member: bytes, times: int) -> bytes:
    """`times` copies of `member`, gzipped: concatenated members, cheap to build however big."""
    return gzip.compress(member, 9) * times


def lines_limits(**caps: int) -> UploadLimits:
    framing = FramingLimits(**{**DEFAULT_LINES, **caps})
    return UploadLimits(max_upload_bytes=1 << 30, max_content_bytes=4 << 30, lines=framing)


DEFAULT_LINES = {
    "chunk_lines": 5000,
    "max_lines": 10_000_000,
    "max_line_bytes": 65_536,
    "max_blank_lines": 100_000,
}


class Counted:
    """A request body that counts the pieces taken from it."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts, self.taken = parts, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.taken += 1
            yield part


async def refusal(body: AsyncIterable[bytes], limits: UploadLimits) -> UploadRefused:
    with pytest.raises(UploadRefused) as refused:
        async with receive(body, media="ndjson", gzipped=True, limits=limits):
            pass
    return refused.value


class TestLinesWhileStreaming:
    async def test_a_bomb_of_zeros_is_one_endless_line_refused_at_once(self) -> None:
        bomb = gzip_of(b"\0" * (1 << 20), 256)  # 256 MiB of zeros, no newline in them
        tracemalloc.start()
        started = time.perf_counter()
        try:
            refused = await refusal(body_of(pieces(bomb, 65536)), lines_limits())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (refused.status, refused.code) == (413, "LINE_TOO_LONG")
        assert time.perf_counter() - started < 2
        assert peak < 8 << 20

    async def test_a_flood_of_blank_lines_is_refused_before_the_body_is_read(self) -> None:
        body = Counted(pieces(gzip_of(b"\n" * (1 << 20), 1024), 16384))  # 1 Gi blank lines
        started = time.perf_counter()
        refused = await refusal(body, lines_limits())
        assert (refused.status, refused.code) == (413, "TOO_MANY_LINES")
        assert "blank lines" in refused.detail
        assert time.perf_counter() - started < 2
        assert body.taken <= len(body.parts) // 2

    @pytest.mark.parametrize(
        ("content", "caps", "code", "detail"),
        [
            (b"{}\n" * 11, {"max_lines": 10}, "TOO_MANY_LINES", "more than 10 lines"),
            (b"{}\n \r\n\n" * 5, {"max_blank_lines": 9}, "TOO_MANY_LINES", "9 blank"),
            (b"{}\n" + b"x" * 2000 + b"\n", {"max_line_bytes": 1024}, "LINE_TOO_LONG", "line 2 "),
            (b"{}\n\n" + b"y" * 5000, {"max_line_bytes": 1024}, "LINE_TOO_LONG", "line 3 "),
        ],
        ids=["lines", "blank-lines", "long-line", "endless-last-line"],
    )
    async def test_caps(self, content: bytes, caps: dict[str, int], code: str, detail: str) -> None:
        refused = await refusal(body_of(pieces(gzip.compress(content), 7)), lines_limits(**caps))
        assert (refused.status, refused.code) == (413, code)
        assert detail in refused.detail

    async def test_a_line_split_across_blocks_is_measured_whole(self) -> None:
        content = b"{}\n" + b"z" * 1500 + b"\n"
        refused = await refusal(
            body_of(pieces(gzip.compress(content), 3)), lines_limits(max_line_bytes=1024)
        )
        assert (refused.code, "line 2 " in refused.detail) == ("LINE_TOO_LONG", True)

    async def test_within_the_caps_nothing_is_refused(self) -> None:
        content = b"\xef\xbb\xbf{}\r\n\r\n" * 10 + b"{}"
        limits = lines_limits(max_lines=11, max_blank_lines=10, max_line_bytes=1024)
        async with receive(
            body_of(pieces(gzip.compress(content), 5)), media="ndjson", gzipped=True, limits=limits
        ) as upload:
            assert upload.file.read() == content


class TestEventLoop:
    async def test_a_big_upload_does_not_hold_the_event_loop(self) -> None:
        line = b'{"cert_no":"2024010901234567","listing_id":"a"}\n'
        body = gzip_of(line * ((1 << 20) // len(line)), 48)  # 48 MiB, one million lines
        lags: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - before - 0.001)

        ticking = asyncio.create_task(ticker())
        try:
            limits = lines_limits()
            async with receive(body_of([body]), media="csv", gzipped=True, limits=limits) as got:
                stop.set()
                await ticking
                assert got.content_bytes == 48 * len(line) * ((1 << 20) // len(line))
        finally:
            stop.set()
        assert len(lags) > 10
        # Generous for a shared machine: done on the loop, this took seconds at a stretch.
        assert max(lags) < 0.1
