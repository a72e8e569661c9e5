"""A first import's slices: each number loaded once, from its first line; repeats and
unreadable rows reported, whichever way the slice is checked (all new, or one at a time)."""

from __future__ import annotations

from certcheck.snapshots.parser_process import Chunk
from certcheck.snapshots.reader import RowError
from certcheck.snapshots.records import Record
from certcheck.snapshots.staging import Chunks, Staged, _FirstOfEach


def record(line: int, number: str) -> Record:
    return (line, number, "valid", f"holder of line {line}")


def first_of_each() -> tuple[_FirstOfEach, list[RowError]]:
    rejected: list[RowError] = []

    async def no_chunks() -> Chunks:  # never iterated: the slices are given to _loadable
        given: list[Chunk] = []
        for chunk in given:
            yield chunk

    return _FirstOfEach(no_chunks(), Staged(rejected.append)), rejected


def test_a_slice_of_new_numbers_loads_whole_without_its_lines() -> None:
    slices, rejected = first_of_each()

    loaded = slices._loadable([record(2, "A"), record(3, "B")])

    assert loaded == [("A", "valid", "holder of line 2"), ("B", "valid", "holder of line 3")]
    assert (slices.doubled, rejected, slices._staged.rows) == ([], [], 2)


def test_a_number_twice_in_one_slice_loads_its_first_line() -> None:
    slices, rejected = first_of_each()

    loaded = slices._loadable([record(2, "A"), record(3, "B"), record(4, "A")])

    assert loaded == [("A", "valid", "holder of line 2"), ("B", "valid", "holder of line 3")]
    assert (slices.doubled, rejected, slices._staged.rows) == ([(4, "A")], [], 2)


def test_a_number_of_an_earlier_slice_is_a_repeat() -> None:
    slices, _ = first_of_each()
    slices._loadable([record(2, "A")])

    loaded = slices._loadable([record(3, "B"), record(4, "A")])

    assert loaded == [("B", "valid", "holder of line 3")]
    assert (slices.doubled, slices._staged.rows) == ([(4, "A")], 2)


def test_an_unreadable_row_is_rejected_and_the_rest_loads() -> None:
    slices, rejected = first_of_each()
    error = RowError(line=3, message="holder is required", cert_no="B")

    loaded = slices._loadable([record(2, "A"), error, record(4, "C")])

    assert loaded == [("A", "valid", "holder of line 2"), ("C", "valid", "holder of line 4")]
    assert (rejected, slices.doubled, slices._staged.rows) == ([error], [], 2)
