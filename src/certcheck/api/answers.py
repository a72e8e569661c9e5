"""A verify answer as JSON bytes, made straight from the check.

What `VerifyResponse`'s serializer writes, byte for byte (tests/api/test_answers.py holds the
two equal), without building the response and certificate models first: on a cache-warm check
those two models and their serialisation cost more than the decision. Every value that is not
a fixed name or a ULID goes through pydantic's own encoder; a certificate's part is the one its
check record keeps (evidence/records.py), encoded once for both.
"""

from __future__ import annotations

import functools
from datetime import datetime

from pydantic_core import to_json

from certcheck.checking import Check
from certcheck.evidence.records import ShownOnce, certificate_shown
from certcheck.verification.records import Reason, Verdict

_NULL = b"null"


def _decision_json(verdict: Verdict, reasons: tuple[Reason, ...]) -> bytes:
    return b'"decision":"%b","reason":"%b","reasons":%b' % (
        verdict.value.encode(),
        reasons[0].value.encode(),
        to_json([reason.value for reason in reasons]),
    )


# Keyed by the reasons alone: a decision's verdict is its first reason's (decide makes every
# decision so). A few dozen combinations of reasons exist, so this stays small.
_DECISIONS: dict[tuple[Reason, ...], bytes] = {}


@functools.lru_cache(maxsize=16)
def _time_json(moment: datetime) -> bytes:
    # The registry's as-of time: the same for every check until the next import or sync.
    return to_json(moment)


def _text(value: str | None) -> bytes:
    return _NULL if value is None else to_json(value)


def verify_json(check: Check, listing_id: str | None) -> bytes:
    """One check's answer."""
    certificate = _NULL if check.certificate is None else certificate_shown(check.certificate)
    return _written(check, listing_id, certificate, to_json(check.checked_at))


class Answers:
    """The answers of many checks (a batch's, a job chunk's), as `verify_json` writes each: what
    they share is encoded once, their time and a certificate asked for again."""

    def __init__(self, shown: ShownOnce) -> None:
        self._shown = shown  # shared with the checks' records when they are made
        self._times: dict[datetime, bytes] = {}

    def of(self, check: Check, listing_id: str | None) -> bytes:
        shown = _NULL if check.certificate is None else self._shown(check.certificate)
        checked_at = self._times.get(check.checked_at)
        if checked_at is None:
            checked_at = self._times[check.checked_at] = to_json(check.checked_at)
        return _written(check, listing_id, shown, checked_at)


def _written(check: Check, listing_id: str | None, certificate: bytes, checked_at: bytes) -> bytes:
    decision = check.decision
    decided = _DECISIONS.get(decision.reasons)
    if decided is None:
        decided = _DECISIONS[decision.reasons] = _decision_json(decision.verdict, decision.reasons)
    return b"".join(
        (
            b'{"check_id":"',
            check.check_id.encode(),
            b'","listing_id":',
            _text(listing_id),
            b',"cert_no":',
            _text(check.cert_no),
            b",",
            decided,
            b',"certificate":',
            certificate,
            b',"registry_as_of":',
            _time_json(check.registry_as_of),
            b',"checked_at":',
            checked_at,
            b',"cert_no_given":',
            _text(check.given),
            b',"detail":',
            _text(check.detail),
            b"}",
        )
    )
