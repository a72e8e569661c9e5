"""Evidence: a check's record, its signed receipt, and the key set that verifies receipts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from ulid import ULID

from certcheck.api.deps import EvidenceDep, VerifyKey
from certcheck.errors import CheckNotFound, MalformedCheckId

router = APIRouter(tags=["evidence"])

JOSE = "application/jose"
# Crockford base32, 26 characters, the first at most 7 (128 bits); any case.
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
# Documented, not enforced by FastAPI: anything else is answered 422 MALFORMED by _record.
CheckId = Annotated[
    str,
    Path(
        description="the check_id of a verify answer, a batch item or a job line (any case)",
        json_schema_extra={"pattern": "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"},
    ),
]
_FUTURE = timedelta(days=1)
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "NOT_FOUND: unknown, past retention, or made by another platform"},
    422: {"description": "MALFORMED: not a ULID"},
}


class RequestOut(BaseModel):
    cert_no: str | None = Field(description="the normalised number; null when absent or malformed")
    product_code: str | None
    model: str | None
    manufacturer: str | None
    listing_id: str | None
    merchant_id: str | None


class CheckRecordOut(BaseModel):
    check_id: str
    platform: str = Field(description="the platform of the key that made the check")
    source: str = Field(description="verify, batch or job")
    job_id: str | None = Field(description="the re-check job, for source job")
    checked_at: datetime
    request: RequestOut
    decision: str
    reason: str
    reasons: list[str]
    certificate: dict[str, Any] | None = Field(description="the certificate as it stood, or null")
    registry_as_of: datetime


class JwkOut(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class JwksOut(BaseModel):
    keys: list[JwkOut]


async def _record(check_id: str, evidence: EvidenceDep, key: VerifyKey) -> dict[str, Any]:
    if not _ULID.fullmatch(check_id):
        raise MalformedCheckId(f"{check_id[:40]!r} is not a check id (a ULID)")
    normalised = check_id.upper()
    issued = ULID.from_str(normalised).milliseconds / 1000
    now = datetime.now(UTC)
    # A ULID may name a moment past the year 9999; no check was made after today.
    if issued <= (now + _FUTURE).timestamp():
        when = datetime.fromtimestamp(issued, UTC)
        record = await evidence.records.get(normalised, when, key.platform)
        if record is not None:
            return record
    raise CheckNotFound(f"no check {normalised} for this platform")


def _json(record: dict[str, Any]) -> bytes:
    # The bytes JSONResponse renders: the receipt's payload reads the same as the record.
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


@router.get(
    "/v1/checks/{check_id}",
    responses={200: {"model": CheckRecordOut}, **_ERRORS},
    response_class=JSONResponse,
)
async def get_check(check_id: CheckId, evidence: EvidenceDep, key: VerifyKey) -> Response:
    """The record of a check made with a key of this platform (docs/evidence.md)."""
    return Response(_json(await _record(check_id, evidence, key)), media_type="application/json")


@router.get(
    "/v1/checks/{check_id}/receipt",
    response_class=Response,
    responses={
        200: {"content": {JOSE: {"schema": {"type": "string"}}}, "description": "compact JWS"},
        **_ERRORS,
    },
)
async def get_receipt(check_id: CheckId, evidence: EvidenceDep, key: VerifyKey) -> Response:
    """The record as a compact JWS signed with Ed25519 (EdDSA) by the current key."""
    payload = _json(await _record(check_id, evidence, key))
    return Response(await evidence.signing.sign(payload), media_type=JOSE)


@router.get("/.well-known/jwks.json", response_model=JwksOut)
async def jwks(evidence: EvidenceDep) -> dict[str, Any]:
    """The public keys that verify receipts (RFC 7517); no key needed."""
    return await evidence.signing.key_set()
