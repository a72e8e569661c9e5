"""Verifying a receipt offline, with PyJWT and a JWK Set: what `certcheck receipt verify` does.

The service signs with `cryptography` alone; checking with an independent JOSE implementation
shows a receipt verifies as RFC 7515 says, not only as this service writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt

from certcheck.evidence.signing import RECEIPT_TYPE


class ReceiptInvalid(Exception):
    """Why a receipt does not verify, in one line."""


@dataclass(frozen=True, slots=True)
class Verified:
    kid: str
    record: dict[str, Any]


def verify(token: str, jwks: Any) -> Verified:
    """The receipt's record, if `token` is a receipt signed by a key of `jwks`."""
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise ReceiptInvalid(f"not a compact JWS: {exc}") from None
    if header.get("alg") != "EdDSA" or header.get("typ") != RECEIPT_TYPE:
        raise ReceiptInvalid(
            f"not a certcheck receipt (alg {header.get('alg')!r}, typ {header.get('typ')!r})"
        )
    kid = header.get("kid")
    key = _key(jwks, kid)
    try:
        payload = jwt.PyJWS().decode(token, key, algorithms=["EdDSA"])
    except jwt.PyJWTError as exc:
        raise ReceiptInvalid(f"the signature does not verify with key {kid}: {exc}") from None
    try:
        record = json.loads(payload)
    except ValueError:
        raise ReceiptInvalid("the signed payload is not JSON") from None
    if not isinstance(record, dict):
        raise ReceiptInvalid("the signed payload is not a check record")
    return Verified(kid=str(kid), record=record)


def _key(jwks: Any, kid: object) -> Any:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise ReceiptInvalid('the key set is not a JWK Set (no "keys" list)')
    for entry in keys:
        if isinstance(entry, dict) and entry.get("kid") == kid:
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                raise ReceiptInvalid(f"key {kid} is not an Ed25519 key")
            try:
                return jwt.PyJWK(entry, algorithm="EdDSA").key
            except jwt.PyJWTError as exc:
                raise ReceiptInvalid(f"key {kid} cannot be read: {exc}") from None
    raise ReceiptInvalid(f"key {kid} is not in the key set (rotated out, or another service)")
