"""certcheck.ids: ULIDs that python-ulid reads back, in order, with the caller's time."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

from ulid import ULID

from certcheck.ids import _encode, _Generator, new_ulid, new_ulids

_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def test_ids_are_ulids_carrying_the_given_time() -> None:
    at = datetime(2026, 12, 2, 7, 30, 15, 123456, tzinfo=UTC)
    made = new_ulid(at)
    assert _ULID.fullmatch(made)
    parsed = ULID.from_str(made)
    assert str(parsed) == made  # the same text python-ulid writes for the same value
    assert parsed.milliseconds == int(at.timestamp() * 1000)


def test_ids_made_in_one_millisecond_are_distinct_and_in_order() -> None:
    at = datetime(2026, 12, 2, 7, 31, tzinfo=UTC)
    made = [new_ulid(at) for _ in range(5_000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    values = [int(ULID.from_str(m)) for m in made]
    assert all(b - a == 1 for a, b in itertools.pairwise(values))
    # Each id's text is written whole or from the last one's (within a 1,024): both as
    # python-ulid writes the value.
    assert [str(ULID.from_int(v)) for v in values] == made
    assert {ULID.from_str(m).milliseconds for m in made} == {int(at.timestamp() * 1000)}


def test_without_a_time_the_clock_is_read() -> None:
    before = int(datetime.now(UTC).timestamp() * 1000)
    assert ULID.from_str(new_ulid()).milliseconds >= before - 1


def test_a_run_of_ids_is_what_one_at_a_time_makes() -> None:
    at = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
    before = new_ulid(at)
    run = new_ulids(3_000, at)  # crosses at least two 1,024-id boundaries of the last characters
    after = new_ulid(at)
    values = [int(ULID.from_str(m)) for m in (before, *run, after)]
    assert all(b - a == 1 for a, b in itertools.pairwise(values))
    assert [str(ULID.from_int(v)) for v in values[1:-1]] == run
    assert {ULID.from_str(m).milliseconds for m in run} == {int(at.timestamp() * 1000)}


def test_a_run_that_would_pass_the_randomness_limit_starts_afresh() -> None:
    generator = _Generator()
    ms = 1_765_000_000_000
    generator._last_ms, generator._last_random = ms, (1 << 80) - 3  # room for two more
    run = generator.new_run(ms, 5)
    randoms = [int(ULID.from_str(m)) & ((1 << 80) - 1) for m in run]
    assert all(b - a == 1 for a, b in itertools.pairwise(randoms))
    assert randoms[-1] < (1 << 80) - 1
    assert {ULID.from_str(m).milliseconds for m in run} == {ms}
    assert generator.new_run(ms, 0) == []


def test_every_bit_of_the_time_and_the_randomness_is_written_in_its_place() -> None:
    # The text is made from the time and two 40-bit halves of the random bits, not one integer.
    low_80 = (1 << 80) - 1
    for bit in range(128):
        value = 1 << bit
        assert _encode(value >> 80, value & low_80) == str(ULID.from_int(value))
    for ms in (0, 1_765_000_000_000, (1 << 48) - 1):
        for random in (0, (1 << 40) - 1, 1 << 40, low_80, 0x5A5A5A5A5A5A5A5A5A5A):
            assert _encode(ms, random) == str(ULID.from_int((ms << 80) | random))
