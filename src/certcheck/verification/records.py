"""The plain values the decision logic works on: listings, certificate records and decisions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple, Protocol


class Status(enum.StrEnum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# A status by its text, without Enum's call (~1 us): made for every certificate read or cached.
STATUS_OF = {status.value: status for status in Status}
# A status's text, without `.value`, a Python-level property (~2,400 instructions compiled):
# read for every certificate a verify answers.
STATUS_TEXT = {status: status.value for status in Status}


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

# Each verdict's and reason's text, for the paths that need one on every check (a record's
# row, the request log's fields): an enum's `.value` is a Python-level property, a call each
# time, where a dict look-up is a fraction of it.
TEXT: dict[Verdict | Reason, str] = {member: member.value for member in (*Verdict, *Reason)}


class Certificate(NamedTuple):
    """One certificate as the registry holds it (registry/rows.py maps it to rows and back;
    api/ converts it to the wire contract, which is not bound to these names).

    A named tuple, not a frozen dataclass: a cache hit makes one (registry/cache.py), and a
    frozen dataclass's __init__ sets its twelve fields one call at a time (2.7 us a hit
    against 0.6, bench/README.md, twenty-first pass). `_replace` makes a changed copy."""

    cert_no: str
    """Always the normalised 16 digits: year, certification body, product code, sequence."""
    holder: str
    """The certificate holder (applicant, 委托人): the one party every record names."""
    manufacturer: str | None
    factory: str | None
    """The producer (生产者) and the production site (生产企业), when the registry gives them."""
    product_code: str
    """The 4-digit catalogue code; digits 7-10 of the number when the registry gave none."""
    product_name: str | None
    models: tuple[str, ...]
    """The models and specifications covered: may be hundreds, or none."""
    issued_on: date | None
    expires_on: date | None
    """None on certificates issued before 2009-09-01, which carry no printed expiry date."""
    # The status with its history: a status change, from a sync or an import, sets all three.
    status: Status
    status_changed_on: date | None
    status_reason: str | None
    """When and why the status last changed, as the registry says."""

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


class ProductClaims(Protocol):
    """What a listing says of its product, as sent."""

    @property
    def product_code(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def manufacturer(self) -> str | None: ...


class ListingClaims(ProductClaims, Protocol):
    """What the decision reads of a listing: a `Listing`, or a request carrying the same four
    fields, decided as it came (a batch of 10,000 would otherwise copy each into a Listing)."""

    @property
    def cert_no(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[Reason, ...]

    @property
    def reason(self) -> Reason:
        return self.reasons[0]
