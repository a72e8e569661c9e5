"""parse_page: a feed page read as untrusted input, envelope first, then item by item."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certcheck.snapshots.reader import RowError, certificate_to_snapshot_dict
from certcheck.sync.feed import FeedError
from certcheck.sync.feedpage import FeedItem, parse_page, parse_timestamp
from certcheck.verification.records import Status
from tests.factories import cert

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
AS_OF = "2026-11-23T03:59:00Z"
EARLIER = "2026-11-22T10:00:00+08:00"


def item(cert_no: str = "2024010901234567", **fields: Any) -> dict[str, Any]:
    return {**certificate_to_snapshot_dict(cert(cert_no)), "updated_at": EARLIER, **fields}


def page(*items: object, **envelope: object) -> bytes:
    document = {"items": list(items), "next_page_token": None, "as_of": AS_OF, **envelope}
    return json.dumps(document).encode()


class TestEnvelope:
    def test_a_good_page(self) -> None:
        parsed = parse_page(page(item(), next_page_token="t-2"), now=NOW)

        assert parsed.items == [
            FeedItem(cert("2024010901234567"), datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
        ]
        assert (parsed.errors, parsed.next_token, parsed.bad_share) == ([], "t-2", 0.0)
        assert parsed.as_of == datetime(2026, 11, 23, 3, 59, tzinfo=UTC)

    @pytest.mark.parametrize("token", [None, ""])
    def test_no_next_token_ends_the_feed(self, token: str | None) -> None:
        assert parse_page(page(next_page_token=token), now=NOW).next_token is None

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b'{"items": [', "not valid JSON"),
            (b"\xff\xfe{}", "not valid JSON"),
            (b'{"items": [], "as_of": "2026-11-23T00:00:00Z", "items": []}', "not valid JSON"),
            (b'{"items": [NaN], "as_of": "2026-11-23T00:00:00Z"}', "not valid JSON"),
            (b'[{"cert_no": "2024010901234567"}]', "a JSON list, not an object"),
            (page(as_of=None), "as_of is missing"),
            (page(as_of="2026-11-23"), "as_of is missing or not an RFC 3339"),
            (page(as_of="2026-11-23T05:00:00Z"), "is in the future"),
            (json.dumps({"as_of": AS_OF}).encode(), "no `items` array"),
            (page(next_page_token=7), "next_page_token is not"),
            (page(next_page_token="a b"), "next_page_token is not"),
            (page(next_page_token="t" * 1025), "next_page_token is not"),
        ],
    )
    def test_a_page_that_cannot_be_used(self, body: bytes, reason: str) -> None:
        with pytest.raises(FeedError, match=reason):
            parse_page(body, now=NOW)

    def test_an_upstream_clock_a_little_ahead_is_fine(self) -> None:
        ahead = (NOW + timedelta(minutes=4)).isoformat()

        assert parse_page(page(as_of=ahead), now=NOW).as_of > NOW


class TestItems:
    @pytest.mark.parametrize(
        ("bad", "reason"),
        [
            ("not an object", "expected a JSON object, found str"),
            (item(updated_at=None), "updated_at is missing"),
            (item(updated_at="yesterday"), "updated_at is missing or not an RFC 3339"),
            (item(updated_at="2026-11-23T04:06:00Z"), "updated_at is in the future"),
            (item(status="bogus"), "status 'bogus' is not a known label"),
            (item(status="无效"), "status '无效' is not a known label"),
            (item(cert_no="2024-01"), "is not a CCC certificate number"),
            (item(issued_on="14/03/2024"), "issued_on '14/03/2024' is not a date"),
            (item(holder=""), "holder is required"),
        ],
    )
    def test_a_bad_item_is_reported_by_position(self, bad: object, reason: str) -> None:
        parsed = parse_page(page(item(), bad, item("2024010901000002")), now=NOW)

        assert [i.certificate.cert_no for i in parsed.items] == [
            "2024010901234567",
            "2024010901000002",
        ]
        (error,) = parsed.errors
        assert error.line == 2
        assert reason in error.message
        assert parsed.bad_share == pytest.approx(1 / 3)

    def test_items_are_normalised_like_snapshot_rows(self) -> None:
        raw = item(cert_no="CCC: 2024-0109-0123-4567", status="撤销", product_code="")

        (parsed,) = parse_page(page(raw), now=NOW).items

        assert parsed.certificate.cert_no == "2024010901234567"
        assert parsed.certificate.status is Status.REVOKED
        assert parsed.certificate.product_code == "0901"

    def test_an_empty_page(self) -> None:
        parsed = parse_page(page(), now=NOW)

        assert (parsed.items, parsed.errors, parsed.bad_share) == ([], [], 0.0)


class TestTimestamps:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-11-23T04:00:00Z", datetime(2026, 11, 23, 4, tzinfo=UTC)),
            ("2026-11-23t04:00:00z", datetime(2026, 11, 23, 4, tzinfo=UTC)),
            ("2026-11-23 12:00:00+08:00", datetime(2026, 11, 23, 4, tzinfo=UTC)),
            (
                "2026-11-23T04:00:00.123456789Z",
                datetime(2026, 11, 23, 4, 0, 0, 123456, tzinfo=UTC),
            ),
            ("2026-11-23T04:00:00", None),  # no offset: which clock?
            ("2026-11-23", None),
            ("2026-13-23T04:00:00Z", None),
            (1_700_000_000, None),
        ],
    )
    def test_rfc3339_with_an_offset_only(self, text: object, expected: datetime | None) -> None:
        assert parse_timestamp(text) == expected


def test_row_errors_are_snapshot_row_errors() -> None:
    assert parse_page(page({}), now=NOW).errors == [
        RowError(1, "updated_at is missing or not an RFC 3339 timestamp")
    ]
