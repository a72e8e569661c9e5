"""Verification: one listing, a batch of listings, and certificate look-ups."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from certcheck.api.answers import Answers
from certcheck.api.convert import certificate_out, verify_response
from certcheck.api.deps import (
    BatchKey,
    BatchTurnDep,
    CheckerDep,
    EvidenceDep,
    SettingsDep,
    StoreDep,
    VerifyKey,
)
from certcheck.api.schemas import (
    BatchRequest,
    BatchResponse,
    CertificateOut,
    Summary,
    VerifyRequest,
    VerifyResponse,
)
from certcheck.api.strict_json import (
    StrictJsonRoute,
    strict_json_route,
    too_many_items,
)
from certcheck.checking import SLICE, Check, Checker
from certcheck.errors import CertificateNotFound, MalformedNumber
from certcheck.evidence.records import ShownOnce, Source, staged_row
from certcheck.evidence.service import Evidence
from certcheck.evidence.store import batch_rows
from certcheck.keys import Principal, Scope
from certcheck.verification.numbers import (
    malformed_detail,
    normalise_cert_no,
    today_in_shanghai,
)
from certcheck.verification.records import TEXT, Verdict

router = APIRouter(prefix="/v1", route_class=StrictJsonRoute, tags=["verification"])

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "REGISTRY_UNAVAILABLE or REGISTRY_STALE, with Retry-After"}
}


async def verify_one(
    body: VerifyRequest,
    checker: CheckerDep,
    evidence: EvidenceDep,
    key: VerifyKey,
    request: Request,
) -> VerifyResponse:
    """Decide whether one listing may go on sale."""
    check = await decided(body, checker, evidence, key, request.scope["state"])
    return verify_response(check, body.listing_id)


async def decided(
    body: VerifyRequest,
    checker: Checker,
    evidence: Evidence,
    key: Principal,
    state: dict[str, Any],
) -> Check:
    """One verify request's check, recorded; `state` is the request's, whose decision and
    reason the request log line reads (observability/requests.py)."""
    check = await checker.check_one(body)
    if evidence.recorder.enabled:
        await evidence.recorder.add((staged_row(check, body, key.platform, _VERIFY),))
    decision = check.decision
    state["decision"] = TEXT[decision.verdict]
    state["reason"] = TEXT[decision.reasons[0]]
    return check


_VERIFY = Source.VERIFY  # read from its class, a member costs a Python-level lookup too


async def verify_batch(
    body: BatchRequest,
    checker: CheckerDep,
    settings: SettingsDep,
    evidence: EvidenceDep,
    key: BatchKey,
    turn: BatchTurnDep,
) -> Response:
    """Decide many listings at once (up to CERTCHECK_BATCH_MAX_ITEMS, 10,000 by default)."""
    if len(body.items) > settings.batch_max_items:
        raise too_many_items(str(len(body.items)), settings.batch_max_items)
    # One batch decided at a time in a process, the others waiting their turn. A batch is CPU
    # work on the one event loop, so two at once finish no sooner than one after the other,
    # but hold twice what a batch holds while it is decided (~25 MB for 10,000 cold numbers:
    # driver rows, checks, records, the answer's bytes): two cold batches at a time took a
    # worker past 300 MiB (bench/README.md, thirtieth pass), and nothing bounded 64 at once.
    async with turn:
        checks = await checker.check(body.items)
        shown = ShownOnce()  # each certificate's JSON made once for the records and the answer
        if evidence.recorder.enabled:
            lines = list(zip(checks, body.items, strict=True))
            rows = await asyncio.to_thread(batch_rows, lines, key.platform, shown)
            await evidence.recorder.add(rows)
        counts = Counter(check.decision.verdict for check in checks)
        summary = Summary(
            allow=counts[Verdict.ALLOW], block=counts[Verdict.BLOCK], review=counts[Verdict.REVIEW]
        )
        return await _batch_json(checks, body.items, summary, shown)


async def _batch_json(
    checks: list[Check], items: list[VerifyRequest], summary: Summary, shown: ShownOnce
) -> Response:
    """BatchResponse as JSON, written a slice of results at a time (api/answers.py) and sent
    as those slices: in one piece, 10,000 results hold the event loop for longer than a
    real-time check may wait, and joining their parts costs a copy of the whole 5 MB."""
    parts = [b'{"results":[']
    answers = Answers(shown)
    for start in range(0, len(checks), SLICE):
        if start:
            await asyncio.sleep(0)
            parts.append(b",")
        end = start + SLICE
        parts.append(
            b",".join(
                [
                    answers.of(check, item.listing_id)
                    for check, item in zip(checks[start:end], items[start:end], strict=True)
                ]
            )
        )
    parts.append(b'],"summary":%b}' % summary.model_dump_json().encode())
    length = str(sum(len(part) for part in parts))
    return StreamingResponse(
        _sent(parts), media_type="application/json", headers={"Content-Length": length}
    )


async def _sent(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


# Added here rather than by decorator: only add_api_route takes a route class of its own, and
# these routes check their key's scope from the headers before reading the body.
router.add_api_route(
    "/verify",
    verify_one,
    methods=["POST"],
    responses={**_UNAVAILABLE, 413: {"description": "PAYLOAD_TOO_LARGE"}},
    route_class_override=strict_json_route(Scope.VERIFY),
)
router.add_api_route(
    "/verify/batch",
    verify_batch,
    methods=["POST"],
    response_model=BatchResponse,
    responses={**_UNAVAILABLE, 413: {"description": "TOO_MANY_ITEMS or PAYLOAD_TOO_LARGE"}},
    route_class_override=strict_json_route(Scope.BATCH, items=VerifyRequest),
)


@router.get(
    "/certificates/{cert_no}",
    responses={
        **_UNAVAILABLE,
        404: {"description": "NOT_FOUND"},
        422: {"description": "MALFORMED"},
    },
    tags=["certificates"],
)
async def get_certificate(cert_no: str, store: StoreDep, _key: VerifyKey) -> CertificateOut:
    """The registry's record of one certificate; the number is normalised like any input."""
    today = today_in_shanghai(datetime.now(UTC))
    number = normalise_cert_no(cert_no, today)
    if number is None:
        raise MalformedNumber(malformed_detail(cert_no, today))
    found = (await store.lookup([number]))[number]
    if found is None:
        raise CertificateNotFound(f"{number} is not in the registry")
    return certificate_out(found)
