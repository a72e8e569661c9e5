"""What the evidence tests share: waiting for a record, verifying receipts independently, and
what a check counts under, worked out one check at a time (the statistics' oracle)."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from typing import Any, cast

import httpx
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from certcheck.evidence.records import Checked
from certcheck.evidence.tally import MISMATCHES, SignalKind
from certcheck.verification.catalogue import clean_code

# joserfc warns that RFC 9864 deprecates "EdDSA"; the contract pins it, so it is allowed here.
_REGISTRY = jws.JWSRegistry(algorithms=["EdDSA"])


async def record(
    client: httpx.AsyncClient, check_id: str, headers: dict[str, str], within: float = 2.0
) -> dict[str, Any]:
    """The check's record, read as soon as it is there; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/v1/checks/{check_id}", headers=headers)
        if response.status_code == 200:
            answer: dict[str, Any] = response.json()
            return answer
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, f"no record of {check_id} within {within} s"
        await asyncio.sleep(0.05)


def verify_with_joserfc(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(protected header, payload) of a receipt, checked by joserfc; raises JoseError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        verified = jws.deserialize_compact(
            token, KeySet.import_key_set(cast(Any, jwks)), registry=_REGISTRY
        )
    return dict(verified.protected), json.loads(verified.payload)


def fails_with_joserfc(token: str, jwks: dict[str, Any]) -> bool:
    try:
        verify_with_joserfc(token, jwks)
    except (JoseError, ValueError):
        return True
    return False


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def changed_at(token: str, at: int) -> str:
    """`token` with the character at `at` changed in its top bit, so its decoded bytes change
    too (a change of the low bits of a last character can be only padding)."""
    char = token[at]
    other = "-" if char == "." else _ALPHABET[_ALPHABET.index(char) ^ 32]
    return token[:at] + other + token[at + 1 :]


def product_code_of(item: Checked) -> str:
    """The product code a check counts under, worked out alone: the certificate's when one was
    found, else the listing's claim read as decide() reads it (width-folded, stripped)."""
    certificate = item.check.certificate
    if certificate is not None:
        return certificate.product_code
    return clean_code(item.requested.product_code)


def signal_kinds(item: Checked) -> list[SignalKind]:
    """The signals a check feeds: every check of a number MANY_MERCHANTS, and one per
    reason that says the claim is not covered (any of its reasons, not only the first)."""
    if item.check.cert_no is None:
        return []
    reasons = item.check.decision.reasons
    return [SignalKind.MANY_MERCHANTS, *(MISMATCHES[r] for r in reasons if r in MISMATCHES)]
