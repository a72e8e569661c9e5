"""normalise_cert_no() and decide() against an independent oracle written from api.md.

The oracle below is deliberately naive: plain loops and string methods, no regular
expressions, no code shared with certcheck.verification. Where api.md leaves a detail open
the oracle's comment names the choice the service made, so a disagreement is a real one.
"""

from __future__ import annotations

import csv
import unicodedata
from datetime import date, timedelta
from importlib.resources import files

from hypothesis import example, given, settings
from hypothesis import strategies as st

from certcheck.verification.catalogue import load_catalogue
from certcheck.verification.decision import decide
from certcheck.verification.numbers import normalise_cert_no
from certcheck.verification.records import Certificate, Listing, Status

TODAY = date(2026, 11, 23)
CATALOGUE = load_catalogue()

# --- the oracle: certificate numbers ------------------------------------------------------

# Unicode's White_Space property (PropList.txt), plus the ASCII information separators
# U+001C-U+001F, which the service also treats as white space (Python's str.isspace does).
WHITE_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000\x1c\x1d\x1e\x1f"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)
# "any Unicode dash or minus sign": general category Pd, and the minus signs.
MINUS_SIGNS = frozenset("-\u2212\u2796\ufe63\uff0d\u207b\u208b")
DASHES = (
    frozenset(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Pd") | MINUS_SIGNS
)
ASCII_DIGITS = "0123456789"
ASCII_ALNUM = frozenset(ASCII_DIGITS + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def oracle_number(raw: str, today: date) -> str | None:
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if ch not in WHITE_SPACE and ch not in DASHES)
    for label in ("ccc", "3c"):  # one leading label, any case
        if text[: len(label)].isascii() and text[: len(label)].lower() == label:
            text = text[len(label) :]
            for suffix in (":", "no."):  # optionally followed by ":" or "No." (any case here)
                if text[: len(suffix)].isascii() and text[: len(suffix)].lower() == suffix:
                    text = text[len(suffix) :]
                    break
            break
    # One trailing parenthesised version; the service takes 1-4 ASCII letters or digits.
    if text.endswith(")") and "(" in text:
        opening = text.rindex("(")
        version = text[opening + 1 : -1]
        if 1 <= len(version) <= 4 and all(ch in ASCII_ALNUM for ch in version):
            text = text[:opening]
    if len(text) != 16 or any(ch not in ASCII_DIGITS for ch in text):
        return None
    return text if 2002 <= int(text[:4]) <= today.year else None


# --- the oracle: decisions -----------------------------------------------------------------

SEVERITY = [  # api.md's table, most severe first
    "MALFORMED", "NOT_FOUND", "SUSPENDED", "REVOKED", "CANCELLED", "EXPIRED", "CERT_REQUIRED",
    "SELF_DECLARED", "PRODUCT_MISMATCH", "MODEL_NOT_COVERED", "MANUFACTURER_MISMATCH",
]  # fmt: skip
BLOCKS = set(SEVERITY[:7])


def _catalogue_rows(name: str) -> list[dict[str, str]]:
    text = (files("certcheck.verification") / "data" / name).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(text.splitlines()))


REMOVED = {r["code"] for r in _catalogue_rows("catalogue.csv") if r["status"] != "current"}
SELF_DECLARED = {
    r["code"] for r in _catalogue_rows("catalogue.csv") if r["mode"] in ("sd_A", "sd_B")
}
NOT_CATALOGUE_GROUPS = {
    r["group"] for r in _catalogue_rows("groups.csv") if r["in_catalogue"].startswith("no")
}


def _strip(value: str) -> str:
    start, end = 0, len(value)
    while start < end and value[start] in WHITE_SPACE:
        start += 1
    while end > start and value[end - 1] in WHITE_SPACE:
        end -= 1
    return value[start:end]


def _code(value: str | None) -> str:
    return _strip(unicodedata.normalize("NFKC", value or ""))


def _text_key(value: str | None) -> str:
    """Equal keys for texts that differ only in case, width and white space."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value or "").casefold())
    return " ".join(folded.split())


def _without_number(product_code: str | None) -> str:
    code = _code(product_code)
    if len(code) != 4 or any(ch not in ASCII_DIGITS for ch in code):
        return "CERT_REQUIRED"  # no code, or one that is not a code: fail safe
    if code in REMOVED or code[:2] in NOT_CATALOGUE_GROUPS:
        return "NOT_REQUIRED"
    return "SELF_DECLARED" if code in SELF_DECLARED else "CERT_REQUIRED"


def oracle_decision(listing: Listing, cert: Certificate | None, today: date) -> list[str]:
    if listing.cert_no is None or _strip(listing.cert_no) == "":
        return [_without_number(listing.product_code)]
    if cert is None:
        return ["NOT_FOUND"]
    reasons = set()
    if cert.status != "valid":
        reasons.add(cert.status.upper())
    if cert.expires_on is not None and cert.expires_on < today:
        reasons.add("EXPIRED")
    if _code(listing.product_code) not in ("", _code(cert.product_code)):
        reasons.add("PRODUCT_MISMATCH")
    if _text_key(listing.model) not in {"", *(_text_key(m) for m in cert.models)}:
        reasons.add("MODEL_NOT_COVERED")
    names = {"", _text_key(cert.holder), _text_key(cert.manufacturer)} - {""}
    if _text_key(listing.manufacturer) and _text_key(listing.manufacturer) not in names:
        reasons.add("MANUFACTURER_MISMATCH")
    return sorted(reasons, key=SEVERITY.index) or ["VALID"]


def verdict_of(reasons: list[str]) -> str:
    """block > review > allow, whatever the order of `reasons`."""
    if any(reason in BLOCKS for reason in reasons):
        return "block"
    return "allow" if set(reasons) <= {"VALID", "NOT_REQUIRED"} else "review"


# --- generated input -------------------------------------------------------------------------

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # ZWSP, ZWNJ, ZWJ, WJ, BOM, soft hyphen
LOOKALIKES = "OoQDlIi|SsBZzGbg"  # letters merchants (or forgers) type for digits
FOREIGN_ZEROS = "\u0660\u06f0\u0966\u09e6\u0e50\u1040\uff10\U0001d7ce"  # last 2: NFKC
SEPARATORS = sorted(WHITE_SPACE | DASHES)
HOSTILE = [*ZERO_WIDTH, *LOOKALIKES, "\x00", "\u2053", "\ud800", "\u0301", "(", ")", ":", "."]


def _any_case(text: str) -> st.SearchStrategy[str]:
    cases = [st.sampled_from(sorted({ch.lower(), ch.upper()})) for ch in text]
    return st.tuples(*cases).map("".join)


LABELS = st.one_of(st.just(""), _any_case("CCC"), _any_case("3C"))
LABEL_SUFFIXES = st.sampled_from(
    ["", ":", "\uff1a", "No.", "no.", "NO.", "No\uff0e", " : ", "No", ":No."]
)
VERSIONS = st.sampled_from(
    ["", "(B0)", "(b1)", "\uff08A12\uff09", "(ABCD)", "(ABCDE)", "()", "(B-)"]
)


@st.composite
def digit_strings(draw: st.DrawFn) -> str:
    year = draw(st.integers(min_value=1998, max_value=TODAY.year + 2))
    rest = draw(st.text(alphabet=ASCII_DIGITS, min_size=13, max_size=13))
    # Mostly 16 digits, sometimes one too few or too many.
    return f"{year}{rest}"[: draw(st.sampled_from([15, 16, 16, 16, 16, 16, 16, 16, 17]))]


def _dress_digit(ch: str, how: int) -> str:
    """The digit as ASCII, full-width, mathematical bold, or another script's digit."""
    zero = ["0", "\uff10", "\U0001d7ce", "\u0660", "\u0966"][how]
    return chr(ord(zero) + int(ch))


@st.composite
def messy_numbers(draw: st.DrawFn) -> str:
    """A number as merchants (and attackers) type it: labels, separators, widths, junk."""
    digits = draw(digit_strings())
    foreign = draw(st.booleans()) and draw(st.booleans())
    parts = []
    for ch in digits:
        how = draw(st.integers(0, 4 if foreign else 2))
        parts.append(_dress_digit(ch, how) if draw(st.integers(0, 3)) == 0 else ch)
        if draw(st.integers(0, 5)) == 0:
            parts.append(draw(st.text(st.sampled_from(SEPARATORS), min_size=1, max_size=2)))
    text = draw(LABELS) + draw(LABEL_SUFFIXES) + "".join(parts) + draw(VERSIONS)
    for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(HOSTILE)) + text[at:]
    return text


FOCUSED_TEXT = st.text(
    alphabet=st.sampled_from([*ASCII_DIGITS, *HOSTILE, *SEPARATORS[:40], "C", "c", "3", "N"]),
    max_size=30,
)


class TestNormaliseAgreesWithTheOracle:
    @settings(max_examples=200)
    @given(raw=messy_numbers())
    @example(raw="2020010901234567")
    @example(raw="\ufeff2020010901234567")
    @example(raw="2020\u200b010901234567")
    @example(raw="2O20010901234567")
    @example(raw="\x1c2020010901234567")
    @example(raw="CCCNo2020010901234567")
    def test_messy_numbers(self, raw: str) -> None:
        assert normalise_cert_no(raw, TODAY) == oracle_number(raw, TODAY)

    @settings(max_examples=200)
    @given(raw=st.one_of(FOCUSED_TEXT, st.text(max_size=40)))
    def test_any_text(self, raw: str) -> None:
        assert normalise_cert_no(raw, TODAY) == oracle_number(raw, TODAY)

    @settings(max_examples=50)
    @given(raw=messy_numbers())
    def test_the_result_is_16_ascii_digits_or_nothing(self, raw: str) -> None:
        number = normalise_cert_no(raw, TODAY)
        assert number is None or (len(number) == 16 and set(number) <= set(ASCII_DIGITS))


# --- decisions -----------------------------------------------------------------------------

CODES = ["0901", "0902", "1606", "0801", "0908", "1901", "1999", "0501", "0704", "2501", "9901"]


def _variants(value: str) -> st.SearchStrategy[str]:
    """`value` as typed elsewhere: other case, full width, padded, or something else."""
    width = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in value)
    padded = [f" {value}\u3000", value.replace(" ", "  ")]
    spoilt = [f"{value}\u200b", f"{value}X", "\ufeff" + value, ""]
    return st.sampled_from([value, value.upper(), value.lower(), width, *padded, *spoilt])


@st.composite
def certificates(draw: st.DrawFn) -> Certificate:
    expiry = draw(st.one_of(st.none(), st.integers(-3, 3).map(lambda d: TODAY + timedelta(d))))
    return Certificate(
        cert_no="2020010901234567",
        status=draw(st.sampled_from(Status)),
        holder=draw(st.sampled_from(["Example Electronics Co., Ltd.", "深圳示例电子有限公司"])),
        manufacturer=draw(st.sampled_from([None, "Example Mfg", "\uff21\uff22\uff23  Corp"])),
        factory=None,
        product_code=draw(st.sampled_from(CODES)),
        product_name=None,
        models=tuple(
            draw(st.lists(st.sampled_from(["XK-200", "xk 200s", "\uff21\uff11"]), max_size=3))
        ),
        issued_on=date(2020, 3, 14),
        expires_on=expiry,
        status_changed_on=None,
        status_reason=None,
    )


@st.composite
def listings_for(draw: st.DrawFn, cert: Certificate | None) -> Listing:
    def claim(known: list[str], others: list[str]) -> str | None:
        pool = st.sampled_from(known + others).flatmap(_variants) if known else st.nothing()
        return draw(st.one_of(st.none(), pool, st.sampled_from(others), st.text(max_size=8)))

    holder = [cert.holder, cert.manufacturer or ""] if cert else []
    return Listing(
        cert_no=draw(st.sampled_from([None, "", " ", "\u3000", "2020010901234567"])),
        product_code=claim([cert.product_code] if cert else [], CODES),
        model=claim(list(cert.models) if cert else [], ["XK-300"]),
        manufacturer=claim(holder, ["Other Co."]),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[Listing, Certificate | None, date]:
    cert = draw(st.one_of(st.none(), certificates()))
    return draw(listings_for(cert)), cert, TODAY


class TestDecideAgreesWithTheOracle:
    @settings(max_examples=200)
    @given(case=cases())
    def test_generated_cases(self, case: tuple[Listing, Certificate | None, date]) -> None:
        listing, cert, today = case
        decision = decide(listing, cert, today=today, catalogue=CATALOGUE)
        expected = oracle_decision(listing, cert, today)
        assert [r.value for r in decision.reasons] == expected
        assert decision.verdict.value == verdict_of(expected)

    @settings(max_examples=200)
    @given(code=st.one_of(st.sampled_from(CODES).flatmap(_variants), st.text(max_size=6)))
    def test_without_a_number_only_uncatalogued_codes_are_allowed(self, code: str) -> None:
        decision = decide(Listing(product_code=code), None, today=TODAY, catalogue=CATALOGUE)
        assert [r.value for r in decision.reasons] == [_without_number(code)]
