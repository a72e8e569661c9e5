"""Wire schemas of the listing watch (docs/watch.md), converted explicitly from watch records."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from certcheck.api.schemas import NO_NUL
from certcheck.verification.records import Reason, Verdict
from certcheck.watch.records import WatchedListing, WatchEvent
from certcheck.watch.webhooks import WebhookState


class InvalidLineOut(BaseModel):
    line: int = Field(description="the upload's line number, counting every line from 1")
    code: str = Field(description="a problem code: MALFORMED or MISSING_FIELD")
    detail: str


class WatchUploadOut(BaseModel):
    upserted: int = Field(description="lines that inserted or replaced a watched listing")
    invalid_lines: list[InvalidLineOut] = Field(
        description="the first 1,000 lines that were not taken, in order"
    )
    invalid_count: int = Field(description="every line that was not taken")


class WatchedListingOut(BaseModel):
    listing_id: str
    cert_no: str = Field(description="the normalised number; as sent when it is malformed")
    decision: Verdict
    reason: Reason
    since: datetime = Field(description="when the listing got its current decision")


# The record's fields as they stand: one definition, in watch/records.py. No docstring, which
# would become the schema's description in the OpenAPI document.
class WatchEventOut(WatchEvent):
    pass


class WatchEventsOut(BaseModel):
    events: list[WatchEventOut]
    next: str = Field(description="send it back as `since`; it stays the same when nothing is new")


def listing_out(listing: WatchedListing) -> WatchedListingOut:
    return WatchedListingOut(
        listing_id=listing.listing_id,
        cert_no=listing.cert_no or listing.cert_no_sent,
        decision=listing.decision,
        reason=listing.reason,
        since=listing.since,
    )


def event_out(event: WatchEvent) -> WatchEventOut:
    # By attribute: a StoredWatchEvent's seq stays behind (the cursor carries it).
    return WatchEventOut.model_validate(event, from_attributes=True)


class WebhookIn(BaseModel):
    url: str = Field(
        max_length=2048,
        description="https, to a public address; redirects are not followed",
        json_schema_extra=NO_NUL,
    )


class WebhookRegisteredOut(BaseModel):
    url: str
    secret: str = Field(
        description="`whsec_` and the base64 of the HMAC key; shown this once, never again"
    )


class WebhookOut(BaseModel):
    url: str
    pending: int = Field(description="events recorded since registration, not yet acknowledged")
    failing_since: datetime | None = Field(
        description="when the oldest pending event's first attempt failed; null: not failing"
    )
    dead_lettered: int = Field(
        description="events given up on after the retry period (still in /v1/watch/events)"
    )


def webhook_out(state: WebhookState) -> WebhookOut:
    return WebhookOut(
        url=state.url,
        pending=state.pending,
        failing_since=state.failing_since,
        dead_lettered=state.dead_lettered,
    )
