"""What the watch works on, as plain values: a listing to watch, a watched one, an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from certcheck.verification.records import Listing, Reason, Verdict


@dataclass(frozen=True, slots=True)
class WatchInput:
    """One line of a watch upload: a verify request with its listing_id and cert_no present."""

    listing_id: str
    cert_no: str
    product_code: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    merchant_id: str | None = None

    @property
    def listing(self) -> Listing:
        return Listing(self.cert_no, self.product_code, self.model, self.manufacturer)


@dataclass(frozen=True, slots=True)
class WatchedListing:
    platform: str
    listing_id: str
    cert_no: str | None  # normalised; None when what was sent is malformed
    cert_no_sent: str
    listing: Listing  # the request fields, as sent, to decide it again
    decision: Verdict
    reason: Reason
    since: datetime
    check_id: str
    merchant_id: str | None = None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    seq: int
    event_id: str
    listing_id: str
    cert_no: str | None
    old_decision: Verdict
    new_decision: Verdict
    reason: Reason
    check_id: str
    created_at: datetime
