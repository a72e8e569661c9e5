"""What a webhook delivery sends: the event as JSON, and the Standard Webhooks signature headers
(standardwebhooks.org: HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" with the
secret's bytes, sent as `v1,<base64>`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from standardwebhooks import Webhook

from certcheck import __version__
from certcheck.watch.records import WatchEvent


def payload(event: WatchEvent) -> bytes:
    """The event as GET /v1/watch/events gives it, as compact JSON."""
    body = {
        "event_id": event.event_id,
        "listing_id": event.listing_id,
        "cert_no": event.cert_no,
        "old_decision": event.old_decision.value,
        "new_decision": event.new_decision.value,
        "reason": event.reason.value,
        "check_id": event.check_id,
        "created_at": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed_headers(secret: bytes, event_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: id, Unix timestamp, `v1,<base64 HMAC-SHA256>`."""
    at = at.replace(microsecond=0)
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=at, data=body.decode())
    return {
        "content-type": "application/json",
        "user-agent": f"certcheck/{__version__}",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
