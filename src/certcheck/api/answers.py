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
from certcheck.evidence.records import certificate_shown
from certcheck.verification.records import Reason

_NULL = b"null"


@functools.lru_cache(maxsize=256)
def _reasons_json(reasons: tuple[Reason, ...]) -> bytes:
    return to_json([reason.value for reason in reasons])


@functools.lru_cache(maxsize=16)
def _time_json(moment: datetime) -> bytes:
    # The registry's as-of time: the same for every check until the next import or sync.
    return to_json(moment)


def _text(value: str | None) -> bytes:
    return _NULL if value is None else to_json(value)


def verify_json(check: Check, listing_id: str | None) -> bytes:
    decision = check.decision
    certificate = _NULL if check.certificate is None else certificate_shown(check.certificate)
    return b"".join(
        (
            b'{"check_id":"',
            check.check_id.encode(),
            b'","listing_id":',
            _text(listing_id),
            b',"cert_no":',
            _text(check.cert_no),
            b',"decision":"',
            decision.verdict.value.encode(),
            b'","reason":"',
            decision.reason.value.encode(),
            b'","reasons":',
            _reasons_json(decision.reasons),
            b',"certificate":',
            certificate,
            b',"registry_as_of":',
            _time_json(check.registry_as_of),
            b',"checked_at":',
            to_json(check.checked_at),
            b',"cert_no_given":',
            _text(check.given),
            b',"detail":',
            _text(check.detail),
            b"}",
        )
    )
