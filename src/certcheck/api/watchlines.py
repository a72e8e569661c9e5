"""The lines of a watch upload: each a verify request, validated as POST /v1/verify validates
one, with `listing_id` and `cert_no` required. A line that is not taken becomes an InvalidLine
with its line number and a problem code; the rest of the upload is unaffected."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from certcheck.api.recheck import describe_invalid, repeats_a_member
from certcheck.api.schemas import VerifyRequest, verify_request_from_json
from certcheck.jobs.chunks import InputChunk
from certcheck.verification.numbers import is_absent
from certcheck.watch.records import WatchInput

FIELDS = frozenset(VerifyRequest.model_fields)
MALFORMED = "MALFORMED"
MISSING_FIELD = "MISSING_FIELD"
_REQUIRED = ("listing_id", "cert_no")


@dataclass(frozen=True, slots=True)
class InvalidLine:
    line: int
    code: str
    detail: str


def parse_chunk(chunk: InputChunk) -> tuple[list[WatchInput], list[InvalidLine]]:
    taken: list[WatchInput] = []
    invalid: list[InvalidLine] = []
    for at, (line, record) in enumerate(zip(chunk.lines, chunk.records, strict=True)):
        why = chunk.errors.get(at)
        parsed = InvalidLine(line, MALFORMED, why) if why else parse_line(line, record)
        if isinstance(parsed, InvalidLine):
            invalid.append(parsed)
        else:
            taken.append(parsed)
    return taken, invalid


def parse_line(line: int, record: bytes) -> WatchInput | InvalidLine:
    try:
        request = verify_request_from_json(record)
    except ValidationError as exc:
        return InvalidLine(line, MALFORMED, describe_invalid(exc))
    if repeats_a_member(record, len(request.model_fields_set)):
        return InvalidLine(line, MALFORMED, "invalid JSON: a member name appears twice")
    missing = [name for name in _REQUIRED if is_absent(getattr(request, name))]
    if missing:
        return InvalidLine(line, MISSING_FIELD, f"{' and '.join(missing)} required")
    return WatchInput(
        listing_id=request.listing_id or "",
        cert_no=request.cert_no or "",
        product_code=request.product_code,
        model=request.model,
        manufacturer=request.manufacturer,
        merchant_id=request.merchant_id,
    )
