"""normalise_text: the comparison form of models and manufacturer names."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certcheck.verification.text import normalise_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("XK-200", "xk-200", id="case"),
        pytest.param("\uff38\uff2b\uff0d\uff12\uff10\uff10", "xk-200", id="full-width"),
        pytest.param("  XK   200 \u3000", "xk 200", id="runs-and-ideographic-space"),
        pytest.param("XK\t\n200", "xk 200", id="tab-newline"),
        pytest.param("XK\u00a0200", "xk 200", id="nbsp"),
        pytest.param("Straße GmbH", "strasse gmbh", id="casefold-not-lower"),
        pytest.param("Ⅻ-1", "xii-1", id="roman-numeral-compatibility"),
        pytest.param("ß\u0301", "s\u015b", id="recomposed-after-casefold"),
        pytest.param("深圳市某某电子有限公司", "深圳市某某电子有限公司", id="cjk-untouched"),
        pytest.param("\uff08深圳\uff09有限公司", "(深圳)有限公司", id="full-width-parentheses"),
        pytest.param("", "", id="empty"),
        pytest.param(" \u3000 ", "", id="only-white-space"),
    ],
)
def test_normalise_text(value: str, expected: str) -> None:
    assert normalise_text(value) == expected


@given(st.text())
def test_idempotent(value: str) -> None:
    once = normalise_text(value)
    assert normalise_text(once) == once


@given(st.text())
def test_white_space_is_single_ascii_spaces_inside(value: str) -> None:
    result = normalise_text(value)
    assert result == result.strip()
    assert "  " not in result
    assert all(ch == " " or not ch.isspace() for ch in result)


@given(st.text(), st.text(alphabet=st.sampled_from(" \t\n\u3000\u00a0\u2003"), min_size=1))
def test_white_space_kind_does_not_matter(value: str, space: str) -> None:
    assert normalise_text(value.replace(" ", space)) == normalise_text(value)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_text_takes_the_short_way_to_the_same_form(value: str) -> None:
    # The recipe in full, which normalise_text skips for ASCII text.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    assert normalise_text(value) == " ".join(folded.split())
