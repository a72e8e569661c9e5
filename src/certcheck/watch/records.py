"""What the watch works on, as plain values: a listing to watch, a watched one, an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

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


class WatchEvent(BaseModel):
    """One decision change of a watched listing, as GET /v1/watch/events shows it.

    The one definition of its fields: the wire schema (api/watch_schemas.py) is derived from
    it, so a field added here is a field added to the API.
    """

    model_config = ConfigDict(frozen=True)

    event_id: str
    listing_id: str
    cert_no: str | None
    old_decision: Verdict
    new_decision: Verdict
    reason: Reason
    check_id: str = Field(description="the check behind the new decision")
    created_at: datetime


class StoredWatchEvent(WatchEvent):
    """An event with its place in the platform's order, which the cursor carries instead."""

    seq: int
