"""Framing an upload into chunks: line numbers, blank lines, CRLF, BOM, CSV rows, the caps."""

from __future__ import annotations

import io
import json

import pytest

from certcheck.errors import UploadRefused
from certcheck.jobs.chunks import InputChunk
from certcheck.jobs.framing import FramingLimits, frame
from certcheck.jobs.records import UploadFormat

FIELDS = frozenset({"cert_no", "product_code", "model", "manufacturer", "listing_id"})
LIMITS = FramingLimits(chunk_lines=1000, max_lines=10_000, max_line_bytes=4096)


def framed(
    content: bytes, fmt: UploadFormat = UploadFormat.NDJSON, limits: FramingLimits = LIMITS
) -> list[InputChunk]:
    return list(frame(io.BytesIO(content), fmt, limits, FIELDS))


def lines_of(chunks: list[InputChunk]) -> list[tuple[int, bytes, str | None]]:
    return [
        (line, record, chunk.errors.get(at))
        for chunk in chunks
        for at, (line, record) in enumerate(zip(chunk.lines, chunk.records, strict=True))
    ]


class TestNdjson:
    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            (b'{"a":1}\n{"b":2}\n', [(1, b'{"a":1}'), (2, b'{"b":2}')]),
            (b'{"a":1}\r\n{"b":2}\r\n', [(1, b'{"a":1}'), (2, b'{"b":2}')]),
            (b'{"a":1}\n{"b":2}', [(1, b'{"a":1}'), (2, b'{"b":2}')]),
            (b'{"a":1}\r\n{"b":2}\r', [(1, b'{"a":1}'), (2, b'{"b":2}')]),
            (b'\n\n{"a":1}\n  \t\n\r\n{"b":2}\n\n', [(3, b'{"a":1}'), (6, b'{"b":2}')]),
            (b'\xef\xbb\xbf{"a":1}\n', [(1, b'{"a":1}')]),
            (b"not json\n", [(1, b"not json")]),
        ],
        ids=["lf", "crlf", "no-final-newline", "final-cr", "blank-lines", "bom", "kept-as-is"],
    )
    def test_records_keep_their_line_numbers(
        self, content: bytes, expected: list[tuple[int, bytes]]
    ) -> None:
        assert [(n, r) for n, r, _ in lines_of(framed(content))] == expected

    def test_only_blank_lines_give_no_chunk(self) -> None:
        assert framed(b"\n \n\r\n") == []

    def test_chunks_hold_chunk_lines_each(self) -> None:
        content = b"".join(b'{"n":%d}\n' % n for n in range(25))
        chunks = framed(content, limits=FramingLimits(10, 100, 4096))
        assert [len(c) for c in chunks] == [10, 10, 5]
        assert [c.index for c in chunks] == [0, 1, 2]
        assert chunks[2].lines == list(range(21, 26))

    def test_more_lines_than_allowed_is_413(self) -> None:
        content = b'{"a":1}\n' * 11
        with pytest.raises(UploadRefused) as refused:
            framed(content, limits=FramingLimits(4, 10, 4096))
        assert (refused.value.status, refused.value.code) == (413, "TOO_MANY_LINES")

    def test_a_line_over_the_limit_is_refused_with_its_number(self) -> None:
        content = b'{"a":1}\n' + b"x" * 5000 + b"\n"
        with pytest.raises(UploadRefused) as refused:
            framed(content)
        assert refused.value.code == "LINE_TOO_LONG"
        assert "line 2 " in refused.value.detail

    def test_an_endless_line_is_refused_before_it_is_read_whole(self) -> None:
        with pytest.raises(UploadRefused) as refused:
            framed(b"y" * (3 << 20))
        assert (refused.value.code, refused.value.detail) == (
            "LINE_TOO_LONG",
            "line 1 is longer than 4096 bytes",
        )


class TestCsv:
    def test_rows_become_json_objects_without_empty_cells(self) -> None:
        content = b"cert_no,model,listing_id\r\n2024010901234567,XK-200,a\r\n,,b\r\n"
        got = lines_of(framed(content, UploadFormat.CSV))
        assert [(n, json.loads(r)) for n, r, _ in got] == [
            (2, {"cert_no": "2024010901234567", "model": "XK-200", "listing_id": "a"}),
            (3, {"listing_id": "b"}),
        ]

    def test_bom_header_case_and_spaces(self) -> None:
        content = "\ufeff Cert_No , MODEL\n1,2\n".encode()
        ((_, record, _),) = lines_of(framed(content, UploadFormat.CSV))
        assert json.loads(record) == {"cert_no": "1", "model": "2"}

    def test_quoted_newlines_keep_the_starting_line(self) -> None:
        content = b'model,listing_id\n"two\nlines",a\n\n"x, y",b\n'
        got = lines_of(framed(content, UploadFormat.CSV))
        assert [(n, json.loads(r)) for n, r, _ in got] == [
            (2, {"model": "two\nlines", "listing_id": "a"}),
            (5, {"model": "x, y", "listing_id": "b"}),
        ]

    def test_ragged_rows_are_unreadable_lines(self) -> None:
        content = b"cert_no,model\n1,2\n3\n4,5,6\n7,8\n"
        got = lines_of(framed(content, UploadFormat.CSV))
        assert [(n, e) for n, _, e in got] == [
            (2, None),
            (3, "expected 2 fields as in the header, found 1"),
            (4, "expected 2 fields as in the header, found 3"),
            (5, None),
        ]

    def test_blank_and_empty_rows_are_skipped(self) -> None:
        content = b"cert_no,model\n\n,\n  , \n1,2\n"
        assert [n for n, _, _ in lines_of(framed(content, UploadFormat.CSV))] == [5]

    def test_a_row_that_is_not_utf8_is_one_unreadable_line(self) -> None:
        content = b"cert_no,model\n1,\xff\xfe\n3,4\n"
        got = lines_of(framed(content, UploadFormat.CSV))
        assert [(n, e) for n, _, e in got] == [(2, "the line is not valid UTF-8"), (3, None)]

    def test_a_broken_quote_is_an_unreadable_line(self) -> None:
        content = b'cert_no,model\n"1"x,2\n3,4\n'
        got = lines_of(framed(content, UploadFormat.CSV))
        assert got[0][0] == 2
        assert (got[0][2] or "").startswith("unreadable CSV record")
        assert got[-1][:2] == (3, b'{"cert_no": "3", "model": "4"}')

    @pytest.mark.parametrize(
        ("content", "code"),
        [
            (b"cert_no,colour\n1,red\n", "INVALID_CSV_HEADER"),
            (b"cert_no,cert_no\n1,2\n", "INVALID_CSV_HEADER"),
            (b"cert_no,,model\n1,,2\n", "INVALID_CSV_HEADER"),
            (b"\n\n", "EMPTY_UPLOAD"),
        ],
        ids=["unknown-column", "doubled-column", "empty-column-name", "no-header"],
    )
    def test_a_bad_header_refuses_the_upload(self, content: bytes, code: str) -> None:
        with pytest.raises(UploadRefused) as refused:
            framed(content, UploadFormat.CSV)
        assert (refused.value.status, refused.value.code) == (422, code)

    def test_header_only_gives_no_chunk(self) -> None:
        assert framed(b"cert_no,model\n", UploadFormat.CSV) == []


class TestUnstorableText:
    """NUL and lone surrogates: no text column stores them, so the line fails, not the job."""

    @pytest.mark.parametrize(
        "record",
        [
            b'{"cert_no":"1","listing_id":"a\\u0000b"}',
            b'{"listing_id":["x",{"k":"\\ud800"}]}',
            b'{"a\\u0000":"1"}',
        ],
        ids=["nul", "nested-lone-surrogate", "nul-in-a-name"],
    )
    def test_an_ndjson_line_spelling_one_is_an_unreadable_line(self, record: bytes) -> None:
        got = lines_of(framed(record + b'\n{"cert_no":"2"}\n'))
        assert [(n, e is not None) for n, _, e in got] == [(1, True), (2, False)]
        assert "NUL" in (got[0][2] or "")

    @pytest.mark.parametrize(
        "record",
        [b'{"listing_id":"a\\\\u0000b"}', b'{"listing_id":"\\u00e9\\ud83d\\ude00"}'],
        ids=["escaped-backslash", "surrogate-pair"],
    )
    def test_lookalikes_are_kept(self, record: bytes) -> None:
        assert lines_of(framed(record + b"\n")) == [(1, record, None)]

    def test_a_csv_cell_holding_one_is_an_unreadable_line(self) -> None:
        content = b"cert_no,listing_id\n1,a\x00b\n2,c\n"
        got = lines_of(framed(content, UploadFormat.CSV))
        assert [(n, e is not None) for n, _, e in got] == [(2, True), (3, False)]
