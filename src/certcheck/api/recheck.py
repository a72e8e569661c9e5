"""The wire format of a re-check job's lines (jobs.processing.LineCodec): an input line is a
verify request, validated as POST /v1/verify validates one; a result line is a verify response
with the line number (RecheckResult), its bytes made as POST /v1/verify makes its answer."""

from __future__ import annotations

import json

from pydantic import ValidationError

from certcheck.api.answers import Answers
from certcheck.api.schemas import VerifyRequest, verify_request_from_json
from certcheck.checking import Check
from certcheck.evidence.records import ShownOnce
from certcheck.jobs.processing import LineRenderer, Parsed

_FIELDS = frozenset(VerifyRequest.model_fields)


class RecheckLines:
    fields = _FIELDS

    def parse(self, record: bytes) -> Parsed | str:
        try:
            request = verify_request_from_json(record)
        except ValidationError as exc:
            return describe_invalid(exc)
        if repeats_a_member(record, len(request.model_fields_set)):
            return "invalid JSON: a member name appears twice"
        return request

    def renderer(self, shown: ShownOnce) -> LineRenderer:
        """A chunk's lines: what they share (their time, a certificate) is encoded once."""
        answers = Answers(shown)

        def render(check: Check, listing_id: str | None, line: int, error: str | None) -> bytes:
            body = answers.of(check, listing_id)
            # RecheckResult's extra members go in front of the verify response's, made once.
            head = b'{"line":%d,' % line
            if error is not None:
                head += b'"error":%s,' % json.dumps(error).encode()
            return head + body[1:]

        return render


def repeats_a_member(record: bytes, members: int) -> bool:
    """True when a member name appears twice (I-JSON), which the validator lets pass.

    Cheap first: every member has a colon after its name, and a colon is never escaped, so a
    line with no more colons than distinct members has no repeated one; others are parsed again.
    """
    if record.count(b":") <= members:
        return False
    pairs: list[tuple[str, object]] = json.loads(record, object_pairs_hook=lambda p: p)
    return len({name for name, _ in pairs}) != len(pairs)


def describe_invalid(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return f"invalid JSON: {first.get('ctx', {}).get('error', first['msg'])}"
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]
