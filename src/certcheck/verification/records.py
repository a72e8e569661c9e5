"""The plain values the decision logic works on: listings, certificate records and decisions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date


class Status(enum.StrEnum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Verdict(enum.StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    REVIEW = "review"


class Reason(enum.StrEnum):
    # Declaration order is severity order: api.md lists reasons most severe first.
    MALFORMED = "MALFORMED"
    NOT_FOUND = "NOT_FOUND"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    CERT_REQUIRED = "CERT_REQUIRED"
    SELF_DECLARED = "SELF_DECLARED"
    PRODUCT_MISMATCH = "PRODUCT_MISMATCH"
    MODEL_NOT_COVERED = "MODEL_NOT_COVERED"
    MANUFACTURER_MISMATCH = "MANUFACTURER_MISMATCH"
    VALID = "VALID"
    NOT_REQUIRED = "NOT_REQUIRED"

    @property
    def verdict(self) -> Verdict:
        return _VERDICT_OF[self]


_VERDICT_OF: dict[Reason, Verdict] = {
    **{
        r: Verdict.BLOCK
        for r in (
            Reason.MALFORMED,
            Reason.NOT_FOUND,
            Reason.SUSPENDED,
            Reason.REVOKED,
            Reason.CANCELLED,
            Reason.EXPIRED,
            Reason.CERT_REQUIRED,
        )
    },
    **{
        r: Verdict.REVIEW
        for r in (
            Reason.SELF_DECLARED,
            Reason.PRODUCT_MISMATCH,
            Reason.MODEL_NOT_COVERED,
            Reason.MANUFACTURER_MISMATCH,
        )
    },
    Reason.VALID: Verdict.ALLOW,
    Reason.NOT_REQUIRED: Verdict.ALLOW,
}


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate as the registry holds it; `cert_no` is always the normalised 16 digits."""

    cert_no: str
    status: Status
    holder: str
    manufacturer: str | None
    factory: str | None
    product_code: str
    product_name: str | None
    models: tuple[str, ...]
    issued_on: date | None
    expires_on: date | None
    status_changed_on: date | None
    status_reason: str | None

    @property
    def body_code(self) -> str:
        return self.cert_no[4:6]


@dataclass(frozen=True, slots=True)
class Listing:
    """What a platform claims about one listing; every field is raw merchant input."""

    cert_no: str | None = None
    product_code: str | None = None
    model: str | None = None
    manufacturer: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[Reason, ...]

    @property
    def reason(self) -> Reason:
        return self.reasons[0]
