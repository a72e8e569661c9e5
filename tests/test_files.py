"""A file written whole or not at all (snapshots, re-check results)."""

from __future__ import annotations

from pathlib import Path

import pytest

from certcheck.files import whole_file


def test_the_file_appears_whole_when_the_block_ends(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with whole_file(target) as out:
        out.write(b"first half ")
        assert not target.exists()
        out.write(b"second half")
    assert target.read_bytes() == b"first half second half"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_part(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")

    def half_written() -> None:
        with whole_file(target) as out:
            out.write(b"new, half")
            raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        half_written()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_two_writers_of_one_file_at_once_each_leave_it_whole(tmp_path: Path) -> None:
    # With one shared partial name the first to finish renamed the other's half-written
    # file, and the second then failed: found when two benchmark runs made one snapshot.
    target = tmp_path / "snapshot.csv.gz"
    with whole_file(target) as slow:
        slow.write(b"slow: ")
        with whole_file(target) as fast:
            fast.write(b"fast, whole")
        assert target.read_bytes() == b"fast, whole"
        slow.write(b"whole too")
    assert target.read_bytes() == b"slow: whole too"
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.csv.gz"]
