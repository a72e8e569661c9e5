"""Reading a snapshot costs bounded memory and time whatever the file holds."""

from __future__ import annotations

import io
import time
import tracemalloc

import pytest

from certcheck.snapshots.reader import (
    ReadLimits,
    RowError,
    SnapshotError,
    SnapshotFormat,
    SnapshotKind,
    SnapshotRow,
    iter_snapshot,
)
from tests.conftest import today

CSV = SnapshotFormat(SnapshotKind.CSV, gzip=False)
JSONL = SnapshotFormat(SnapshotKind.JSONL, gzip=False)
HEADER = b"cert_no,status,holder\n"
ROW = b"2024010901000001,valid,Co.\n"


def read(data: bytes, fmt: SnapshotFormat, limits: ReadLimits) -> list[SnapshotRow | RowError]:
    return list(iter_snapshot(io.BytesIO(data), fmt, today=today(), limits=limits))


class TestEndlessLines:
    def test_a_csv_line_of_zeros_is_refused_holding_one_capped_piece(self) -> None:
        data = HEADER + b"0" * (128 << 20) + b"\n" + ROW
        tracemalloc.start()
        started = time.perf_counter()
        try:
            with pytest.raises(SnapshotError) as refused:
                read(data, CSV, ReadLimits(max_line_chars=1 << 20))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert "line 2 is too long" in str(refused.value)
        assert peak < 16 << 20  # a few capped pieces, never the line (the file is 128 MiB)
        assert time.perf_counter() - started < 10

    def test_a_json_line_over_the_cap_is_a_row_error_and_reading_goes_on(self) -> None:
        good = b'{"cert_no":"2024010901000001","status":"valid","holder":"Co."}\n'
        rows = read(b"x" * 5000 + b"\n" + good, JSONL, ReadLimits(max_line_chars=1024))
        assert isinstance(rows[0], RowError)
        assert rows[0].line == 1
        assert isinstance(rows[1], SnapshotRow)


class TestBlankFloods:
    @pytest.mark.parametrize(
        ("data", "fmt"),
        [
            (HEADER + b"\n" * 1001 + ROW, CSV),
            (HEADER + b",,\n" * 1001 + ROW, CSV),
            (b"\r\n" * 1001, JSONL),
            (b"\n" * 1001 + HEADER + ROW, CSV),
        ],
        ids=["csv-blank", "csv-empty-rows", "jsonl-blank", "before-the-header"],
    )
    def test_more_blank_lines_than_the_cap_refuse_the_file(
        self, data: bytes, fmt: SnapshotFormat
    ) -> None:
        with pytest.raises(SnapshotError) as refused:
            read(data, fmt, ReadLimits(max_blank_lines=1000))
        assert "more than 1000 blank lines" in str(refused.value)

    def test_up_to_the_cap_they_are_skipped(self) -> None:
        rows = read(HEADER + b"\n" * 1000 + ROW, CSV, ReadLimits(max_blank_lines=1000))
        assert [type(r) for r in rows] == [SnapshotRow]
        assert rows[0].line == 1002
