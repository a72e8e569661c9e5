"""Normalising merchant-typed CCC certificate numbers into the canonical 16 ASCII digits."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

NUMBER_FORMAT_HINT = (
    "A CCC certificate number is 16 digits: year of issue (4), certification body (2), "
    "product code (4) and sequence number (6), for example 2020010901234567; the longer "
    "serial printed on the paper sheet (证书纸号, often quoted as 20 characters) is not "
    "the certificate number."
)

FIRST_YEAR = 2002  # the CCC scheme started in 2002; no certificate is older

# Minus signs are not category Pd but merchants type them as dashes all the same.
_MINUS_SIGNS = frozenset("\u2212\u2796\ufe63\uff0d\u207b\u208b-")
# Python's str.isspace() also covers the ASCII control separators \x1c-\x1f.
_ASCII_SEPARATORS = str.maketrans("", "", " \t\n\r\v\f\x1c\x1d\x1e\x1f-")

# [0-9] and the ASCII flag matter: \d would accept every script's decimal digits.
_NUMBER = re.compile(
    r"(?:(?:CCC|3C)(?::|NO\.)?)?(?P<digits>[0-9]{16})(?:\([A-Z0-9]{1,4}\))?",
    re.ASCII | re.IGNORECASE,
)
# What may stand around the 16 digits; whatever is left is what a merchant got wrong.
_LABEL = re.compile(r"^(?:CCC|3C)(?::|NO\.)?", re.ASCII | re.IGNORECASE)
_VERSION = re.compile(r"\([A-Z0-9]{1,4}\)$", re.ASCII | re.IGNORECASE)


def today_in_shanghai(now: datetime) -> date:
    """The registry's calendar day: certificates expire by Beijing time, not the server's."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(SHANGHAI).date()


class ShanghaiDay:
    """today_in_shanghai of a time, from the bounds of the last day it made: checks fall on one
    day for hours, and converting each time to the zone took 0.58 us where this takes 0.08.
    One tuple, replaced whole: safe from any thread."""

    def __init__(self) -> None:
        never = datetime.min.replace(tzinfo=UTC)
        self._window: tuple[datetime, datetime, date] = (never, never, date.min)

    def of(self, moment: datetime) -> date:
        start, end, day = self._window
        if start <= moment < end:
            return day
        day = today_in_shanghai(moment)
        start = datetime.combine(day, time(), SHANGHAI).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(), SHANGHAI).astimezone(UTC)
        self._window = (start, end, day)
        return day


def is_absent(raw: str | None) -> bool:
    return raw is None or not raw.strip()


def normalise_cert_no(raw: str, today: date) -> str | None:
    """The 16-digit number `raw` denotes, or None when it cannot be a CCC certificate number."""
    if len(raw) == 16 and raw.isascii() and raw.isdigit():
        digits = raw  # already the 16 digits, as most numbers arrive: nothing to normalise
    else:
        match = _NUMBER.fullmatch(_strip_separators(unicodedata.normalize("NFKC", raw)))
        if match is None:
            return None
        digits = match["digits"]
    return digits if FIRST_YEAR <= int(digits[:4]) <= today.year else None


def _strip_separators(value: str) -> str:
    if value.isascii():  # the common case, done in C
        return value.translate(_ASCII_SEPARATORS)
    return "".join(ch for ch in value if not _is_separator(ch))


def _is_separator(ch: str) -> bool:
    return ch.isspace() or ch in _MINUS_SIGNS or unicodedata.category(ch) == "Pd"


def malformed_detail(raw: str, today: date) -> str:
    """Why `raw`, which normalise_cert_no refused, is not a number, then what one looks like."""
    return f"{_what_is_wrong(raw, today)}. {NUMBER_FORMAT_HINT}"


def _what_is_wrong(raw: str, today: date) -> str:
    text = _strip_separators(unicodedata.normalize("NFKC", raw))
    match = _NUMBER.fullmatch(text)
    if match is not None:
        digits = match["digits"]
        year = int(digits[:4])
        if year > today.year:
            return f"{digits}: year {year} is in the future"
        return f"{digits}: year {year} is before {FIRST_YEAR}, when CCC certification began"
    core = _VERSION.sub("", _LABEL.sub("", text))
    shown = repr(raw) if len(raw) <= 40 else repr(raw[:40]) + "..."
    stray = next((ch for ch in core if ch not in "0123456789"), None)
    if stray is not None:
        return f"{shown}: {stray!r} is not a digit 0-9"
    return f"{shown}: {len(core)} digits where a certificate number has 16"
