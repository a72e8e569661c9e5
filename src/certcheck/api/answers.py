"""A verify answer as JSON bytes, made straight from the check.

What `VerifyResponse`'s serializer writes, byte for byte (tests/api/test_answers.py holds the
two equal), without building the response and certificate models first: on a cache-warm check
those two models and their serialisation cost more than the decision. Every value that is not
a fixed name or a ULID goes through pydantic's own encoder; a certificate's part is encoded
once and reused while the same certificate is served.
"""

from __future__ import annotations

import functools
from datetime import datetime

from pydantic_core import to_json

from certcheck.checking import Check
from certcheck.registry.cache import MEMO_SIZE, Memo
from certcheck.verification.records import Certificate, Reason

_NULL = b"null"


def _encoded(c: Certificate) -> bytes:
    # CertificateOut's members in its order, as plain values: validating a model of values that
    # came from our own registry is work without a purpose, and every certificate of a cold
    # look-up or a re-check job is a new one to the memo.
    return to_json(
        {
            "cert_no": c.cert_no,
            "status": c.status.value,
            "holder": c.holder,
            "manufacturer": c.manufacturer,
            "factory": c.factory,
            "product_code": c.product_code,
            "product_name": c.product_name,
            "models": c.models,
            "body_code": c.body_code,
            "issued_on": c.issued_on,
            "expires_on": c.expires_on,
            "status_changed_on": c.status_changed_on,
            "status_reason": c.status_reason,
        }
    )


# Most checks ask for numbers checked a moment ago: equal certificates share one encoding.
_certificate_json = Memo(MEMO_SIZE, _encoded)


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
    certificate = _NULL if check.certificate is None else _certificate_json(check.certificate)
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
