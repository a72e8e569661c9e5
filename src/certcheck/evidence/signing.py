"""The receipts' Ed25519 signing keys (RFC 8037): stored in signing_keys, rotated by command.

The current key is the one with the newest `current_from`; each process caches it (and the
key set) for at most CACHE_SECONDS, so after a rotation every process signs with the new key
within that. The first key is made when one is first needed. A key's id is its RFC 7638 JWK
thumbprint. Private keys leave this module only as signatures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import signing_keys

CACHE_SECONDS = 5.0  # a rotation reaches every process within this (the contract says 10 s)
RECEIPT_TYPE = "certcheck-receipt"
_k = signing_keys.c


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _thumbprint(x: str) -> str:
    # RFC 7638 section 3.2: the required members, sorted, without whitespace.
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(kid: str, x: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    private: Ed25519PrivateKey

    def __repr__(self) -> str:  # never the key itself, whatever prints it
        return f"_Key(kid={self.kid!r})"


class SigningKeys:
    def __init__(self, engine: AsyncEngine, *, retention_days: int) -> None:
        self._engine = engine
        self._retention = timedelta(days=retention_days)
        self._current: tuple[float, _Key] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    async def rotate(self) -> str:
        """Make a new key current; its id."""
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        x = b64url(private.public_key().public_bytes_raw())
        kid = _thumbprint(x)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(signing_keys).values(
                    kid=kid, private_key=seed, public_x=x, current_from=datetime.now(UTC)
                )
            )
        self._current = self._jwks = None
        return kid

    async def sign(self, payload: bytes) -> str:
        """`payload` as a compact JWS (RFC 7515) signed with the current key."""
        key = await self._current_key()
        header = {"alg": "EdDSA", "kid": key.kid, "typ": RECEIPT_TYPE}
        protected = json.dumps(header, separators=(",", ":")).encode()
        signing_input = f"{b64url(protected)}.{b64url(payload)}"
        signature = key.private.sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(signature)}"

    async def key_set(self) -> dict[str, Any]:
        """The JWK Set: the current key and every key current within the retention."""
        if self._jwks is not None and time.monotonic() - self._jwks[0] < CACHE_SECONDS:
            return self._jwks[1]
        await self._current_key()  # the first key is made on the first look
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(_k.kid, _k.public_x, _k.current_from).order_by(_k.current_from.desc())
                )
            ).all()
        oldest = datetime.now(UTC) - self._retention
        listed, superseded_at = [], None
        for row in rows:
            if superseded_at is None or superseded_at >= oldest:
                listed.append(public_jwk(row.kid, row.public_x))
            superseded_at = row.current_from
        jwks = {"keys": listed}
        self._jwks = (time.monotonic(), jwks)
        return jwks

    async def _current_key(self) -> _Key:
        if self._current is not None and time.monotonic() - self._current[0] < CACHE_SECONDS:
            return self._current[1]
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_k.kid, _k.private_key).order_by(_k.current_from.desc()).limit(1)
                )
            ).first()
        if row is None:
            await self.rotate()
            return await self._current_key()
        key = _Key(row.kid, Ed25519PrivateKey.from_private_bytes(row.private_key))
        self._current = (time.monotonic(), key)
        return key
