"""Chunks as stored: records, line numbers and unreadable lines survive the round trip."""

from __future__ import annotations

import pytest

from certcheck.jobs.chunks import InputChunk, expand_runs, line_runs, pack, unpack


class TestLineRuns:
    @pytest.mark.parametrize(
        ("lines", "runs"),
        [
            ([], []),
            ([7], [[7, 1]]),
            ([1, 2, 3, 7, 8, 10], [[1, 3], [7, 2], [10, 1]]),
        ],
    )
    def test_runs_and_back(self, lines: list[int], runs: list[list[int]]) -> None:
        assert line_runs(lines) == runs
        assert expand_runs(runs) == lines


class TestPack:
    def test_round_trip(self) -> None:
        chunk = InputChunk(
            index=3,
            lines=[2, 3, 9],
            records=[b'{"cert_no":"1"}', b"", b'{"model":"\xe5\x9e\x8b"}'],
            errors={1: "expected 2 fields as in the header, found 1"},
        )
        row = pack(chunk)
        assert row["chunk"] == 3
        assert unpack(3, row["line_runs"], row["records"], row["errors"]) == chunk

    def test_no_errors_store_null(self) -> None:
        row = pack(InputChunk(0, [1], [b"{}"], {}))
        assert row["errors"] is None
        assert unpack(0, row["line_runs"], row["records"], None).errors == {}

    def test_a_mismatch_is_refused(self) -> None:
        row = pack(InputChunk(0, [1, 2], [b"{}", b"{}"], {}))
        with pytest.raises(ValueError, match="2 records for 3 line numbers"):
            unpack(0, "[[1,3]]", row["records"], None)
