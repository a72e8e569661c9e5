"""One page of the upstream feed read as untrusted input: first the envelope, then every item.

A broken envelope (not JSON, no `items`, a bad `as_of` or token) is a `FeedError`: the page
cannot be used at all. A bad item is a `RowError` (its 1-based position in `items`) and the
others still count; each item is validated exactly as a snapshot row is, plus `updated_at`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from certcheck.snapshots.reader import RowError, certificate_row, unique_members
from certcheck.sync.feed import FeedError
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Certificate

# An upstream clock a little ahead of ours is normal; one far ahead would poison the cursor.
CLOCK_SKEW = timedelta(minutes=5)
MAX_TOKEN_CHARS = 1_024
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces


@dataclass(frozen=True, slots=True)
class FeedItem:
    certificate: Certificate
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: list[FeedItem]
    errors: list[RowError]
    next_token: str | None
    as_of: datetime

    @property
    def bad_share(self) -> float:
        total = len(self.items) + len(self.errors)
        return len(self.errors) / total if total else 0.0


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp with its offset, or None when `value` is not one."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    try:
        # fromisoformat keeps microseconds: extra digits are cut, so a cursor errs earlier.
        return datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:
        return None


def parse_page(body: bytes, *, now: datetime) -> FeedPage:
    """The page in `body`, or FeedError; `now` (aware) bounds `as_of` and sets today's date."""
    document = _document(body)
    as_of = parse_timestamp(document.get("as_of"))
    if as_of is None:
        raise FeedError("the page's as_of is missing or not an RFC 3339 timestamp")
    if as_of > now + CLOCK_SKEW:
        raise FeedError(f"the page's as_of {as_of.isoformat()} is in the future")
    raw_items = document.get("items")
    if not isinstance(raw_items, list):
        raise FeedError("the page has no `items` array")
    items: list[FeedItem] = []
    errors: list[RowError] = []
    today = today_in_shanghai(now)
    for index, raw in enumerate(raw_items, 1):
        item = _item(index, raw, now + CLOCK_SKEW, today)
        if isinstance(item, RowError):
            errors.append(item)
        else:
            items.append(item)
    return FeedPage(items, errors, _token(document.get("next_page_token")), as_of)


def _document(body: bytes) -> dict[str, object]:
    try:
        value = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=unique_members,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FeedError(f"the page is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise FeedError(f"the page is a JSON {type(value).__name__}, not an object")
    return value


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _token(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(value):
        raise FeedError("the page's next_page_token is not a short printable string")
    return value


def _item(index: int, raw: object, latest: datetime, today: date) -> FeedItem | RowError:
    if not isinstance(raw, dict):
        return RowError(index, f"expected a JSON object, found {type(raw).__name__}")
    updated_at = parse_timestamp(raw.get("updated_at"))
    if updated_at is None:
        return RowError(index, "updated_at is missing or not an RFC 3339 timestamp")
    if updated_at > latest:  # it would carry the cursor past changes yet to come
        return RowError(index, "updated_at is in the future")
    row = certificate_row(index, raw, today)
    if isinstance(row, RowError):
        return row
    return FeedItem(row.certificate, updated_at)
