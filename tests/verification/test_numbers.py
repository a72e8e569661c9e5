"""Normalisation of certificate numbers: the table of api.md, then properties over messy input."""

from __future__ import annotations

import sys
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certcheck.verification.numbers import (
    FIRST_YEAR,
    NUMBER_FORMAT_HINT,
    SHANGHAI,
    is_absent,
    malformed_detail,
    normalise_cert_no,
    today_in_shanghai,
)

TODAY = date(2026, 11, 23)
NUMBER = "2020010901234567"

ALL_CODE_POINTS = [chr(c) for c in range(sys.maxunicode + 1)]
DASHES = [ch for ch in ALL_CODE_POINTS if unicodedata.category(ch) == "Pd"] + list(
    "\u2212\u2796\ufe63\uff0d\u207b\u208b-"
)
WHITE_SPACE = [ch for ch in ALL_CODE_POINTS if ch.isspace()]
# Decimal digits of other scripts that NFKC leaves alone (Arabic-Indic, Devanagari, ...).
FOREIGN_DIGITS = [
    ch
    for ch in ALL_CODE_POINTS
    if unicodedata.category(ch) == "Nd" and not unicodedata.normalize("NFKC", ch).isascii()
]


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def in_script(text: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(ch)) for ch in text)


class TestNormaliseCertNo:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(NUMBER, NUMBER, id="plain"),
            pytest.param(f"  {NUMBER}\n", NUMBER, id="surrounding-white-space"),
            pytest.param("2020 0109 0123 4567", NUMBER, id="inner-spaces"),
            pytest.param("2020\u30000109\u00a00123\t4567", NUMBER, id="ideographic-nbsp-tab"),
            pytest.param("2020-01-0901-234567", NUMBER, id="ascii-hyphens"),
            pytest.param(full_width(NUMBER), NUMBER, id="full-width-digits"),
            pytest.param(f"CCC{NUMBER}", NUMBER, id="label-CCC"),
            pytest.param(f"ccc:{NUMBER}", NUMBER, id="label-ccc-colon"),
            pytest.param(f"3C{NUMBER}", NUMBER, id="label-3C"),
            pytest.param(f"3c : {NUMBER}", NUMBER, id="label-3c-spaced-colon"),
            pytest.param(f"CCC No. {NUMBER}", NUMBER, id="label-CCC-No"),
            pytest.param(f"CCCNo.{NUMBER}", NUMBER, id="label-CCCNo"),
            pytest.param(f"3C no.{NUMBER}", NUMBER, id="label-3C-lower-no"),
            pytest.param(f"CCC\uff1a{NUMBER}", NUMBER, id="label-full-width-colon"),
            pytest.param(full_width(f"CCC:{NUMBER}"), NUMBER, id="label-all-full-width"),
            pytest.param("2022221101000119(B0)", "2022221101000119", id="version-B0"),
            pytest.param("2022221101000119 (b0)", "2022221101000119", id="version-lower"),
            pytest.param("2022221101000119\uff08B0\uff09", "2022221101000119", id="version-fw"),
            pytest.param(f"CCC: {NUMBER}(AB12)", NUMBER, id="label-and-4-char-version"),
            pytest.param("2002010901234567", "2002010901234567", id="year-2002-first"),
            pytest.param("2001010901234567", None, id="year-2001-before-scheme"),
            pytest.param("2026010901234567", "2026010901234567", id="year-current"),
            pytest.param("2027010901234567", None, id="year-next"),
            pytest.param("0000010901234567", None, id="year-zero"),
            pytest.param(NUMBER[:-1], None, id="15-digits"),
            pytest.param(NUMBER + "8", None, id="17-digits"),
            pytest.param("", None, id="empty"),
            pytest.param(" \u3000-", None, id="only-separators"),
            pytest.param("CCC", None, id="label-only"),
            pytest.param(f"CCC 3C {NUMBER}", None, id="two-labels"),
            pytest.param(f"CCCCCC{NUMBER}", None, id="label-twice"),
            pytest.param(f"CCC:No.{NUMBER}", None, id="colon-and-No"),
            pytest.param(f"{NUMBER}CCC", None, id="label-at-end"),
            pytest.param(f"{NUMBER}(B0)(B1)", None, id="two-versions"),
            pytest.param(f"(B0){NUMBER}", None, id="version-at-start"),
            pytest.param(f"{NUMBER}(ABCDE)", None, id="version-too-long"),
            pytest.param(f"{NUMBER}()", None, id="version-empty"),
            pytest.param(f"{NUMBER}(B-)", NUMBER, id="version-dash-is-removed-first"),
            pytest.param("2O20010901234567", None, id="letter-O-for-zero"),
            pytest.param("202001090l234567", None, id="letter-l-for-one"),
            pytest.param("2020010901234S67", None, id="letter-S-for-five"),
            pytest.param(in_script(NUMBER, "\u0660"), None, id="arabic-indic-digits"),
            pytest.param(in_script(NUMBER, "\u06f0"), None, id="extended-arabic-indic"),
            pytest.param(in_script(NUMBER, "\u0966"), None, id="devanagari-digits"),
            pytest.param(in_script(NUMBER, "\u0e50"), None, id="thai-digits"),
            pytest.param(NUMBER[:-1] + "\u09ed", None, id="one-bengali-digit"),
            pytest.param("\u00b2" + NUMBER[1:], NUMBER, id="superscript-nfkc-to-ascii"),
            pytest.param(in_script(NUMBER, "\U0001d7ce"), NUMBER, id="math-bold-nfkc-to-ascii"),
            pytest.param(NUMBER + "\u200b", None, id="zero-width-space-is-not-white-space"),
            pytest.param("A2010220901234567890", None, id="20-char-paper-serial"),
            pytest.param("20200109012345678901", None, id="20-digit-paper-serial"),
        ],
    )
    def test_table(self, raw: str, expected: str | None) -> None:
        assert normalise_cert_no(raw, TODAY) == expected

    @pytest.mark.parametrize("dash", DASHES, ids=[f"U+{ord(d):04X}" for d in DASHES])
    def test_every_dash_is_removed(self, dash: str) -> None:
        assert normalise_cert_no(f"{dash}2020{dash}0109{dash}{dash}012345 67", TODAY) == NUMBER

    @pytest.mark.parametrize("space", WHITE_SPACE, ids=[f"U+{ord(s):04X}" for s in WHITE_SPACE])
    def test_every_white_space_is_removed(self, space: str) -> None:
        assert normalise_cert_no(f"{space}2020{space}0109{space}01234567{space}", TODAY) == NUMBER

    def test_year_bound_follows_today(self) -> None:
        assert normalise_cert_no("2027010901234567", date(2027, 1, 1)) == "2027010901234567"

    @given(st.text(alphabet="0123456789", min_size=16, max_size=16))
    def test_sixteen_ascii_digits_are_the_number_in_its_years(self, raw: str) -> None:
        # Such a number skips the normalising: it must come out as the full way leaves it.
        in_force = FIRST_YEAR <= int(raw[:4]) <= TODAY.year
        assert normalise_cert_no(raw, TODAY) == (raw if in_force else None)
        assert normalise_cert_no(f" {raw}", TODAY) == normalise_cert_no(raw, TODAY)


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    year = draw(st.integers(min_value=2002, max_value=TODAY.year))
    rest = draw(st.text(alphabet="0123456789", min_size=12, max_size=12))
    return f"{year}{rest}"


@st.composite
def messy_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A valid number and a version of it with full-width digits, white space and dashes."""
    number = draw(valid_numbers())
    separators = st.text(alphabet=st.sampled_from(WHITE_SPACE + DASHES), max_size=3)
    messy = [draw(separators)]
    for digit in number:
        messy.append(full_width(digit) if draw(st.booleans()) else digit)
        messy.append(draw(separators))
    return number, "".join(messy)


class TestNormaliseCertNoProperties:
    @given(messy_numbers())
    def test_valid_number_survives_any_mess(self, pair: tuple[str, str]) -> None:
        number, messy = pair
        assert normalise_cert_no(messy, TODAY) == number

    @given(
        valid_numbers(),
        st.sampled_from(FOREIGN_DIGITS),
        st.integers(min_value=0, max_value=16),
        st.booleans(),
    )
    def test_foreign_digit_is_always_malformed(
        self, number: str, digit: str, at: int, replace: bool
    ) -> None:
        raw = number[:at] + digit + number[at + replace :]
        assert normalise_cert_no(raw, TODAY) is None

    @given(st.text(), st.sampled_from(FOREIGN_DIGITS), st.text())
    def test_foreign_digit_anywhere_in_any_text(self, head: str, digit: str, tail: str) -> None:
        assert normalise_cert_no(head + digit + tail, TODAY) is None

    @given(st.one_of(st.text(), messy_numbers().map(lambda pair: pair[1])))
    def test_output_is_16_ascii_digits_and_stable(self, raw: str) -> None:
        result = normalise_cert_no(raw, TODAY)
        if result is not None:
            assert len(result) == 16
            assert all("0" <= ch <= "9" for ch in result)
            assert normalise_cert_no(result, TODAY) == result


class TestTodayInShanghai:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            pytest.param(datetime(2026, 11, 22, 15, 59, tzinfo=UTC), date(2026, 11, 22), id="eve"),
            pytest.param(
                datetime(2026, 11, 22, 16, 0, tzinfo=UTC), date(2026, 11, 23), id="rollover"
            ),
            pytest.param(
                datetime(2026, 11, 22, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
                date(2026, 11, 23),
                id="new-york",
            ),
            pytest.param(
                datetime(2026, 11, 23, 0, 0, tzinfo=SHANGHAI), date(2026, 11, 23), id="cst"
            ),
        ],
    )
    def test_calendar_day_in_shanghai(self, now: datetime, expected: date) -> None:
        assert today_in_shanghai(now) == expected

    def test_naive_datetime_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            today_in_shanghai(datetime(2026, 11, 23, 12, 0))

    def test_wall_clock_gives_a_plausible_day(self) -> None:
        today = today_in_shanghai(datetime.now(UTC))
        assert abs(today - datetime.now(UTC).date()) <= timedelta(days=1)


class TestIsAbsent:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(None, True, id="none"),
            pytest.param("", True, id="empty"),
            pytest.param(" \t\n", True, id="ascii-white-space"),
            pytest.param("\u3000\u00a0", True, id="ideographic-and-nbsp"),
            pytest.param("-", False, id="dash-is-present-and-malformed"),
            pytest.param("0", False, id="digit"),
        ],
    )
    def test_absent(self, raw: str | None, expected: bool) -> None:
        assert is_absent(raw) is expected


def test_format_hint_states_the_right_format() -> None:
    assert "16 digits" in NUMBER_FORMAT_HINT
    assert "2020010901234567" in NUMBER_FORMAT_HINT
    assert normalise_cert_no("2020010901234567", TODAY) is not None
    assert "paper" in NUMBER_FORMAT_HINT


class TestMalformedDetail:
    @pytest.mark.parametrize(
        ("raw", "why"),
        [
            ("2099999999999999", "2099999999999999: year 2099 is in the future"),
            ("CCC 2027-0109-0123-4567", "2027010901234567: year 2027 is in the future"),
            ("2001010901234567", "2001010901234567: year 2001 is before 2002"),
            ("123", "'123': 3 digits where a certificate number has 16"),
            ("3C: 2020-0109-012345678", "'3C: 2020-0109-012345678': 17 digits where"),
            ("2025O10901234567", "'2025O10901234567': 'O' is not a digit 0-9"),
            ("\u0663" * 16, "'\u0663\u0663"),
            ("x" * 64, f"'{'x' * 40}'...: 'x' is not a digit"),
        ],
        ids=["future", "future-messy", "before-2002", "short", "long", "letter", "arabic", "cut"],
    )
    def test_says_what_is_wrong_then_the_format(self, raw: str, why: str) -> None:
        assert normalise_cert_no(raw, TODAY) is None
        detail = malformed_detail(raw, TODAY)
        assert detail.startswith(why)
        assert detail.endswith(". " + NUMBER_FORMAT_HINT)

    @given(st.text(max_size=64).filter(lambda raw: normalise_cert_no(raw, TODAY) is None))
    def test_any_refused_number_gets_an_explanation(self, raw: str) -> None:
        assert malformed_detail(raw, TODAY).endswith(NUMBER_FORMAT_HINT)
