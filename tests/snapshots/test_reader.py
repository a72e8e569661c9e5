"""Snapshot files: format detection, CSV and JSON Lines rows, gzip, and whole-file failures."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from datetime import date

import pytest

from certcheck.snapshots.reader import (
    COLUMNS,
    RowError,
    SnapshotError,
    SnapshotFormat,
    SnapshotKind,
    SnapshotRow,
    UnsupportedFormat,
    certificate_to_snapshot_dict,
    detect_format,
    iter_snapshot,
)
from certcheck.verification.records import Certificate, Status

TODAY = date(2026, 11, 23)
HEADER = ",".join(COLUMNS)
GOOD = {
    "cert_no": "2020010901234567",
    "status": "valid",
    "holder": "Example Electronics Co., Ltd.",
    "manufacturer": "Example Electronics Co., Ltd.",
    "factory": "Example Electronics (Dongguan) Factory",
    "product_code": "0901",
    "product_name": "Portable computer",
    "models": "XK-200|XK-200S",
    "issued_on": "2022-03-14",
    "expires_on": "2027-03-13",
    "status_changed_on": "",
    "status_reason": "",
}
GOOD_CERT = Certificate(
    cert_no="2020010901234567",
    status=Status.VALID,
    holder="Example Electronics Co., Ltd.",
    manufacturer="Example Electronics Co., Ltd.",
    factory="Example Electronics (Dongguan) Factory",
    product_code="0901",
    product_name="Portable computer",
    models=("XK-200", "XK-200S"),
    issued_on=date(2022, 3, 14),
    expires_on=date(2027, 3, 13),
    status_changed_on=None,
    status_reason=None,
)
CSV = SnapshotFormat(SnapshotKind.CSV, gzip=False)
JSONL = SnapshotFormat(SnapshotKind.JSONL, gzip=False)


def parse(data: bytes, fmt: SnapshotFormat) -> list[SnapshotRow | RowError]:
    return list(iter_snapshot(io.BytesIO(data), fmt, today=TODAY))


def csv_line(**changes: str) -> str:
    fields = GOOD | changes
    return ",".join(f'"{fields[c]}"' if "," in fields[c] else fields[c] for c in COLUMNS)


def json_line(**changes: object) -> str:
    return json.dumps({**certificate_to_snapshot_dict(GOOD_CERT), **changes}, ensure_ascii=False)


def only_row(items: list[SnapshotRow | RowError]) -> Certificate:
    assert len(items) == 1
    assert isinstance(items[0], SnapshotRow), items[0]
    return items[0].certificate


def only_error(items: list[SnapshotRow | RowError]) -> RowError:
    assert len(items) == 1
    assert isinstance(items[0], RowError), items[0]
    return items[0]


class TestDetectFormat:
    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            pytest.param({"filename": "r.csv"}, (SnapshotKind.CSV, False), id="csv"),
            pytest.param({"filename": "R.CSV.GZ"}, (SnapshotKind.CSV, True), id="csv-gz-upper"),
            pytest.param({"filename": "r.jsonl"}, (SnapshotKind.JSONL, False), id="jsonl"),
            pytest.param({"filename": "r.ndjson"}, (SnapshotKind.JSONL, False), id="ndjson"),
            pytest.param({"filename": "/d/r.ndjson.gz"}, (SnapshotKind.JSONL, True), id="path"),
            pytest.param({"content_type": "text/csv"}, (SnapshotKind.CSV, False), id="text-csv"),
            pytest.param(
                {"content_type": "Text/CSV; charset=utf-8"},
                (SnapshotKind.CSV, False),
                id="text-csv-charset",
            ),
            pytest.param(
                {"content_type": "application/x-ndjson"},
                (SnapshotKind.JSONL, False),
                id="x-ndjson",
            ),
            pytest.param(
                {"content_type": "application/jsonl"}, (SnapshotKind.JSONL, False), id="jsonl-mt"
            ),
            pytest.param(
                {"content_type": "text/csv", "content_encoding": "gzip"},
                (SnapshotKind.CSV, True),
                id="encoding-gzip",
            ),
            pytest.param(
                {"content_type": "text/csv", "content_encoding": "X-GZIP"},
                (SnapshotKind.CSV, True),
                id="encoding-x-gzip",
            ),
            pytest.param(
                {"content_type": "text/csv", "content_encoding": "identity"},
                (SnapshotKind.CSV, False),
                id="encoding-identity",
            ),
            pytest.param(
                {"filename": "r.jsonl", "content_type": "text/csv"},
                (SnapshotKind.JSONL, False),
                id="name-wins",
            ),
            pytest.param(
                {"filename": "upload.bin", "content_type": "text/csv"},
                (SnapshotKind.CSV, False),
                id="unknown-name-falls-back",
            ),
            pytest.param(
                {"filename": "r.csv.gz", "content_encoding": "gzip"},
                (SnapshotKind.CSV, True),
                id="gz-and-encoding-one-layer",
            ),
        ],
    )
    def test_detects(self, kwargs: dict[str, str], expected: tuple[SnapshotKind, bool]) -> None:
        assert detect_format(**kwargs) == SnapshotFormat(*expected)

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({}, id="nothing"),
            pytest.param({"filename": "r.txt"}, id="txt"),
            pytest.param({"filename": "r.json"}, id="json"),
            pytest.param({"filename": "csv"}, id="no-dot"),
            pytest.param({"filename": "r.gz"}, id="bare-gz"),
            pytest.param({"content_type": "application/json"}, id="application-json"),
            pytest.param({"content_type": "application/gzip"}, id="application-gzip"),
            pytest.param({"filename": "r.csv", "content_encoding": "br"}, id="brotli"),
            pytest.param({"content_type": "text/csv", "content_encoding": "deflate"}, id="deflate"),
            pytest.param({"filename": "r.csv", "content_encoding": "gzip, br"}, id="two-codings"),
        ],
    )
    def test_refuses(self, kwargs: dict[str, str]) -> None:
        with pytest.raises(UnsupportedFormat):
            detect_format(**kwargs)


class TestCsv:
    def test_reads_every_column(self) -> None:
        assert only_row(parse(f"{HEADER}\n{csv_line()}\n".encode(), CSV)) == GOOD_CERT

    def test_bom_crlf_columns_in_any_order_and_extra_columns(self) -> None:
        data = (
            "\ufeff Status ,HOLDER,Remarks,cert_no\r\n"
            "已撤销,深圳市华创电子有限公司,anything,CCC: 2020-0109-01234567\r\n"
        )
        cert = only_row(parse(data.encode(), CSV))
        assert (cert.cert_no, cert.status, cert.holder) == (
            "2020010901234567",
            Status.REVOKED,
            "深圳市华创电子有限公司",
        )
        assert (cert.product_code, cert.models, cert.issued_on) == ("0901", (), None)

    @pytest.mark.parametrize(
        ("changes", "field", "expected"),
        [
            pytest.param({"models": " A-1 | A-1S ||"}, "models", ("A-1", "A-1S"), id="models"),
            pytest.param({"models": ""}, "models", (), id="no-models"),
            pytest.param({"product_code": ""}, "product_code", "0901", id="code-from-number"),
            pytest.param(
                {"product_code": "\uff10\uff19\uff10\uff12"}, "product_code", "0902", id="code-nfkc"
            ),
            pytest.param({"product_code": " 2201 "}, "product_code", "2201", id="code-padded"),
            pytest.param({"manufacturer": "  "}, "manufacturer", None, id="blank-is-none"),
            pytest.param({"status": "过期失效"}, "status", Status.EXPIRED, id="chinese-status"),
            pytest.param({"expires_on": ""}, "expires_on", None, id="no-expiry"),
            pytest.param({"holder": " 宏达 "}, "holder", "宏达", id="stripped"),
        ],
    )
    def test_field(self, changes: dict[str, str], field: str, expected: object) -> None:
        cert = only_row(parse(f"{HEADER}\n{csv_line(**changes)}\n".encode(), CSV))
        assert getattr(cert, field) == expected

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            pytest.param({"cert_no": "2020-01-09-0123"}, "not a CCC certificate", id="short"),
            pytest.param({"cert_no": "2030010901234567"}, "not a CCC", id="future-year"),
            pytest.param({"cert_no": "2020O10901234567"}, "not a CCC", id="letter-o"),
            pytest.param({"cert_no": "1" * 65}, "not a CCC", id="over-long-number"),
            pytest.param({"cert_no": ""}, "cert_no is required", id="no-number"),
            pytest.param({"status": "active"}, "status 'active' is not a known", id="status"),
            pytest.param({"status": "无效"}, "'无效'", id="bare-wuxiao"),
            pytest.param({"status": ""}, "status is required", id="no-status"),
            pytest.param({"holder": " "}, "holder is required", id="no-holder"),
            pytest.param({"holder": "x" * 513}, "longer than 512", id="long-holder"),
            pytest.param({"status_reason": "y" * 513}, "status_reason is longer", id="reason"),
            pytest.param({"factory": "a\x00b"}, "factory contains a NUL", id="nul"),
            pytest.param({"product_code": "901"}, "product_code '901'", id="code-3-digits"),
            pytest.param({"product_code": "09a1"}, "not 4 digits", id="code-letter"),
            pytest.param({"product_code": "٠٩٠١"}, "not 4 digits", id="code-arabic-digits"),
            pytest.param({"models": "m" * 257}, "longer than 256", id="long-model"),
            pytest.param({"models": "|".join(["m"] * 2001)}, "more than 2000", id="many-models"),
            pytest.param({"issued_on": "2020/03/14"}, "issued_on '2020/03/14'", id="slashes"),
            pytest.param({"expires_on": "2025-02-30"}, "expires_on", id="no-such-day"),
            pytest.param({"status_changed_on": "20200314"}, "YYYY-MM-DD", id="basic-iso"),
        ],
    )
    def test_row_error(self, changes: dict[str, str], message: str) -> None:
        error = only_error(parse(f"{HEADER}\n{csv_line(**changes)}\n".encode(), CSV))
        assert error.line == 2
        assert message in error.message

    def test_bad_rows_are_reported_by_line_and_good_rows_still_come(self) -> None:
        lines = [
            HEADER,  # 1
            csv_line(cert_no="2020010100000001"),  # 2
            csv_line(cert_no="bogus"),  # 3
            csv_line(cert_no="2020010100000002", status_reason='"two\nlines"'),  # 4-5
            csv_line(status="unheard-of"),  # 6
            "",  # 7
            "2020010100000003,valid",  # 8: too few fields
            ",,,,,,,,,,,",  # 9: a spreadsheet's empty row
            csv_line(cert_no="2020010100000004", holder='"bad "quote"'),  # 10
            csv_line(cert_no="2020010100000005"),  # 11
        ]
        items = parse("\n".join(lines).encode(), CSV)
        assert [
            (i.line, i.certificate.cert_no[-1]) for i in items if isinstance(i, SnapshotRow)
        ] == [
            (2, "1"),
            (4, "2"),
            (11, "5"),
        ]
        assert [i.line for i in items if isinstance(i, RowError)] == [3, 6, 8, 10]
        fields_error = next(i for i in items if isinstance(i, RowError) and i.line == 8)
        assert fields_error.message == "expected 12 fields as in the header, found 2"

    def test_embedded_newline_is_kept(self) -> None:
        row = csv_line(status_reason='"line one\nline two"')
        data = f"{HEADER}\n{row}\n"
        assert only_row(parse(data.encode(), CSV)).status_reason == "line one\nline two"

    def test_unterminated_quote_at_end_is_a_row_error(self) -> None:
        bad = csv_line(holder='"never closed')
        data = f"{HEADER}\n{csv_line()}\n{bad}\n"
        items = parse(data.encode(), CSV)
        assert isinstance(items[0], SnapshotRow)
        assert isinstance(items[1], RowError)
        assert items[1].line == 3

    @pytest.mark.parametrize("column", ["cert_no", "status", "holder"])
    def test_missing_required_column_fails_the_file(self, column: str) -> None:
        header = ",".join(c for c in COLUMNS if c != column)
        with pytest.raises(SnapshotError, match=column):
            parse(f"{header}\n".encode(), CSV)

    @pytest.mark.parametrize(
        ("data", "match"),
        [
            pytest.param(b"", "cert_no", id="empty-file"),
            pytest.param(b"cert_no,status,holder,Status\n", "more than once", id="twice"),
            pytest.param(b"cert_no;status;holder\n", "required", id="semicolons"),
        ],
    )
    def test_unusable_header_fails_the_file(self, data: bytes, match: str) -> None:
        with pytest.raises(SnapshotError, match=match):
            parse(data, CSV)

    def test_invalid_utf8_fails_the_file(self) -> None:
        data = f"{HEADER}\n{csv_line()}\n".encode() + b"2020010901234567,valid,\xff\xfe\n"
        with pytest.raises(SnapshotError, match="invalid UTF-8"):
            parse(data, CSV)


class TestJsonl:
    def test_reads_a_certificate(self) -> None:
        assert only_row(parse(f"{json_line()}\n".encode(), JSONL)) == GOOD_CERT

    def test_nulls_absent_members_and_unknown_members(self) -> None:
        line = json.dumps(
            {
                "cert_no": "2020010901234567",
                "status": "注销",
                "holder": "H",
                "models": None,
                "manufacturer": None,
                "note": {"anything": 1},
            }
        )
        cert = only_row(parse(line.encode(), JSONL))
        assert (cert.status, cert.models, cert.manufacturer, cert.product_code) == (
            Status.CANCELLED,
            (),
            None,
            "0901",
        )

    def test_blank_lines_are_skipped_and_lines_counted(self) -> None:
        data = f"\n{json_line()}\r\n   \n\n{json_line(cert_no='x')}\n"
        items = parse(data.encode(), JSONL)
        assert [(type(i).__name__, i.line) for i in items] == [("SnapshotRow", 2), ("RowError", 5)]

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            pytest.param('{"cert_no": "2020010901234567",', "not valid JSON", id="broken"),
            pytest.param("[1, 2]", "expected a JSON object, found list", id="array"),
            pytest.param('"text"', "found str", id="string"),
            pytest.param("[" * 100_000, "not valid JSON", id="deep-nesting"),
            pytest.param(json_line(models="A|B"), "models must be an array", id="models-str"),
            pytest.param(json_line(models=["A", 2]), "array of strings", id="models-int"),
            pytest.param(json_line(cert_no=2020010901234567), "must be a string", id="number"),
            pytest.param(json_line(holder=None), "holder is required", id="holder-null"),
            pytest.param(json_line(issued_on=20200314), "issued_on must be a string", id="date"),
            pytest.param(
                '{"cert_no": "2020010901234567", "status": "valid", "holder": "A\\ud800"}',
                "holder contains a NUL character or a lone surrogate",
                id="lone-surrogate",
            ),
            pytest.param(
                '{"cert_no": "2020010901234567", "status": "revoked", "status": "valid"}',
                "appears twice",
                id="duplicate-member",
            ),
        ],
    )
    def test_row_error(self, line: str, message: str) -> None:
        items = parse(f"{json_line()}\n{line}\n{json_line()}\n".encode(), JSONL)
        assert [type(i) for i in items] == [SnapshotRow, RowError, SnapshotRow]
        error = items[1]
        assert isinstance(error, RowError)
        assert error.line == 2
        assert message in error.message

    def test_over_long_line_is_skipped_not_held(self) -> None:
        data = f'{json_line()}\n{{"holder": "{"x" * 5_000_000}"}}\n{json_line()}\n'
        items = parse(data.encode(), JSONL)
        assert [(type(i), i.line) for i in items] == [
            (SnapshotRow, 1),
            (RowError, 2),
            (SnapshotRow, 3),
        ]


class TestGzip:
    @pytest.mark.parametrize(
        "plain",
        [
            pytest.param(SnapshotFormat(SnapshotKind.CSV, False), id="csv"),
            pytest.param(SnapshotFormat(SnapshotKind.JSONL, False), id="jsonl"),
        ],
    )
    def test_reads_gzip_and_leaves_the_stream_open(self, plain: SnapshotFormat) -> None:
        text = f"{HEADER}\n{csv_line()}\n" if plain.kind is SnapshotKind.CSV else json_line()
        stream = io.BytesIO(gzip.compress(text.encode()))
        items = list(iter_snapshot(stream, SnapshotFormat(plain.kind, True), today=TODAY))
        assert only_row(items) == GOOD_CERT
        assert not stream.closed

    def test_reads_gzip_from_a_read_write_temporary_file(self) -> None:
        # Uploads are spooled to "w+b" files; GzipFile must not take that mode for writing.
        with tempfile.TemporaryFile() as stream:
            stream.write(gzip.compress(json_line().encode()))
            stream.seek(0)
            items = list(
                iter_snapshot(stream, SnapshotFormat(SnapshotKind.JSONL, True), today=TODAY)
            )
        assert only_row(items) == GOOD_CERT

    @pytest.mark.parametrize("kind", list(SnapshotKind))
    def test_truncated_gzip_fails_the_file(self, kind: SnapshotKind) -> None:
        rows = (
            [json_line()] * 2000 if kind is SnapshotKind.JSONL else [HEADER, *[csv_line()] * 2000]
        )
        packed = gzip.compress("\n".join(rows).encode())
        with pytest.raises(SnapshotError, match="broken gzip"):
            parse(packed[: len(packed) - 20], SnapshotFormat(kind, True))

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(b"cert_no,status,holder\n", id="not-gzip"),
            pytest.param(gzip.compress(b"x" * 1000)[:10] + b"\x00" * 30, id="corrupt-deflate"),
        ],
    )
    def test_broken_gzip_fails_the_file(self, data: bytes) -> None:
        with pytest.raises(SnapshotError):
            parse(data, SnapshotFormat(SnapshotKind.CSV, True))


class TestCertificateToSnapshotDict:
    def test_is_json_lines_shaped(self) -> None:
        assert certificate_to_snapshot_dict(GOOD_CERT) == {
            **GOOD,
            "models": ["XK-200", "XK-200S"],
            "status_changed_on": None,
            "status_reason": None,
        }
        assert tuple(certificate_to_snapshot_dict(GOOD_CERT)) == COLUMNS
