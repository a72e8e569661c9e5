"""A check record: what was asked, the certificate as it stood and what was decided.

A verify's row is made as it is answered (staged_row: one tuple of plain values waits in the
buffer), a batch's, a job chunk's or a watch round's by rows_of in a worker thread; the JSON a
platform reads (GET /v1/checks/{id}) and the payload of its receipt are both made from the
stored row by `as_json`.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from pydantic_core import to_json

from certcheck.checking import Check
from certcheck.registry.cache import MEMO_SIZE, Memo
from certcheck.verification.catalogue import clean_code
from certcheck.verification.numbers import ShanghaiDay
from certcheck.verification.records import TEXT, Certificate, Listing, ProductClaims, Reason


class Source(enum.StrEnum):
    VERIFY = "verify"
    BATCH = "batch"
    JOB = "job"


# Checked and Requested are made for every check on the request path: as named tuples they cost
# a third of a frozen dataclass (0.7 against 1.7-1.8 us the pair), and a Requested, all text,
# is soon left alone by the cyclic collector while it waits in the buffer.
class Requested(NamedTuple):
    """The listing's fields as sent (None when not sent); the number comes from the Check."""

    product_code: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    listing_id: str | None = None
    merchant_id: str | None = None

    @classmethod
    def of(cls, listing: Listing, listing_id: str | None, merchant_id: str | None) -> Requested:
        """A listing's claims with the ids that came beside them (a job line, a watched one)."""
        return cls(
            listing.product_code, listing.model, listing.manufacturer, listing_id, merchant_id
        )


class Checked(NamedTuple):
    """A check waiting to be written: cheap to make on the request path."""

    check: Check
    requested: Requested
    source: Source
    platform: str
    job_id: str | None = None


# Column order of check_records, which COPY needs.
COLUMNS = (
    "check_id",
    "checked_at",
    "platform",
    "source",
    "job_id",
    "cert_no",
    "product_code",
    "model",
    "manufacturer",
    "listing_id",
    "merchant_id",
    "decision",
    "reasons",
    "certificate",
    "registry_as_of",
)
SOURCE_AT, CHECK_ID_AT = COLUMNS.index("source"), COLUMNS.index("check_id")
_RECORD_WIDTH = len(COLUMNS)
_REQUEST_FIELDS = ("cert_no", "product_code", "model", "manufacturer", "listing_id", "merchant_id")


_day_of = ShanghaiDay().of
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """`moment` as whole microseconds since the Unix epoch: how a record's row keeps its two
    times. asyncpg's COPY encodes an integer in a fraction of what a timestamptz costs it
    (each is converted to UTC and subtracted from PostgreSQL's epoch as Python objects, on the
    event loop), and SQLite's rows need no bind processor for it; the database makes the
    times again as it inserts the rows (staged.py)."""
    return (moment - _EPOCH) // _MICROSECOND


def moment_of(n: int) -> datetime:
    """The time `micros` made `n` of."""
    return _EPOCH + timedelta(microseconds=n)


class Asked(ProductClaims, Protocol):
    """What a check record keeps of a request besides the number: a Requested, or the
    request itself (a VerifyRequest has these fields), so none is made on the request path."""

    @property
    def listing_id(self) -> str | None: ...
    @property
    def merchant_id(self) -> str | None: ...


def staged_row(
    check: Check, asked: Asked, platform: str, source: Source, job_id: str | None = None
) -> tuple[Any, ...]:
    """The row of one check as the buffer keeps it (staged.STAGE_COLUMNS order), made on the
    request path: plain text, numbers (its times as `micros`), a date and None, so the
    collector stops looking at it after one young collection, and the check, its
    certificate and the request can go at once. The certificate is the answer's own JSON
    bytes (`certificate_shown`), which the database reads as text: decoded here, a row held
    a second copy of them, twice their size in a string of Chinese text. A batch of many
    checks is made faster by rows_of; the two make equal rows."""
    decision = check.decision
    said, first = _told(decision.reasons)
    certificate = check.certificate
    return (
        check.check_id,
        micros(check.checked_at),
        platform,
        _SOURCES[source],
        job_id,
        check.cert_no,
        asked.product_code,
        asked.model,
        asked.manufacturer,
        asked.listing_id,
        asked.merchant_id,
        TEXT[decision.verdict],
        said,
        None if certificate is None else certificate_shown(certificate),
        micros(check.registry_as_of),
        counted_code(certificate, asked.product_code),
        _day_of(check.checked_at),
        first,
    )


def row_of(item: Checked) -> tuple[Any, ...]:
    """The check_records row of `item`, in COLUMNS order (its certificate as JSON bytes, its
    times as `micros`)."""
    return staged_row(item.check, item.requested, item.platform, item.source, item.job_id)[
        : len(COLUMNS)
    ]


# Bounded by the reasons decide() can give together: a few dozen.
@functools.lru_cache(maxsize=256)
def _told(reasons: tuple[Reason, ...]) -> tuple[str, str]:
    """A record's `reasons` text and the first reason (what the statistics count it under)."""
    return " ".join(reason.value for reason in reasons), reasons[0].value


def counted_code(certificate: Certificate | None, claim: str | None) -> str:
    """The product code the statistics count a check under: the certificate's when one was
    found, else the listing's claim as decide() reads it (width-folded, stripped), else ""."""
    return _claimed_code(claim) if certificate is None else certificate.product_code


# Claims repeat: each distinct one is cleaned once while it is among the recent.
_claimed_code = functools.lru_cache(maxsize=4096)(clean_code)


def rows_of(
    lines: Iterable[tuple[Check, Asked]],
    platform: str,
    source: Source,
    job_id: str | None,
    *,
    staged: bool = False,
    shown: ShownOnce | None = None,
) -> list[tuple[Any, ...]]:
    """row_of for many checks of one platform, source and job (a job's chunk, say): what is
    the same for many of them is made once (a certificate's JSON once per certificate, by
    `shown` when the checks' answers were written with it). `staged` rows (staged.py) end
    with what the check's figures count it under: its product code (counted_code), its China
    Standard Time day and its most severe reason."""
    source_value = source.value
    shown = ShownOnce() if shown is None else shown
    verdicts = TEXT
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    # A chunk's or a batch's checks share one time and one as-of time: each made once.
    checked_at, checked_micros, day = _EPOCH, 0, _EPOCH.date()
    as_of, as_of_micros = _EPOCH, 0
    for check, asked in lines:
        if check.checked_at is not checked_at:
            checked_at = check.checked_at
            checked_micros = micros(checked_at)
            # One object a day while the day lasts: the driver's rows are made per distinct
            # object (bulk.Statement).
            day = _day_of(checked_at)
        if check.registry_as_of is not as_of:
            as_of = check.registry_as_of
            as_of_micros = micros(as_of)
        decision = check.decision
        said, first = _told(decision.reasons)
        certificate = check.certificate
        certificate_json = None if certificate is None else shown(certificate)
        claimed_code = asked.product_code
        row = (
            check.check_id,
            checked_micros,
            platform,
            source_value,
            job_id,
            check.cert_no,
            claimed_code,
            asked.model,
            asked.manufacturer,
            asked.listing_id,
            asked.merchant_id,
            verdicts[decision.verdict],
            said,
            certificate_json,
            as_of_micros,
            counted_code(certificate, claimed_code),
            day,
            first,
        )
        # The staged row cut short, not the record's row extended: that made a list and a
        # tuple again, an item.
        append(row if staged else row[:_RECORD_WIDTH])
    return rows


# As verification.records.TEXT: an enum's `.value` is a Python-level property.
_SOURCES = {source: source.value for source in Source}


def _shown(c: Certificate) -> bytes:
    # The verify answer's members in its order (api.md): pydantic's encoder over plain values.
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


# The certificate as the verify answer shows it, as JSON bytes: the answer writes them and the
# check's record keeps them, so a certificate is encoded once for both. Most checks ask for
# numbers checked a moment ago, so the same certificates come back again and again.
certificate_shown = Memo(MEMO_SIZE, _shown)


class ShownOnce:
    """`certificate_shown` for the checks of one batch or chunk, where the same certificate
    object comes back for every listing that names it, and for both its answers and its
    records: met again, it is answered by identity (hashing a Certificate for the memo hashes
    every field, its models too). `keep=False`: certificates the memo does not hold are not
    put in it (a re-check job's: Memo.unkept). Not for two threads at once."""

    def __init__(self, *, keep: bool = True) -> None:
        # Each certificate is kept with its JSON, so its id cannot be reused meanwhile.
        self._by_id: dict[int, tuple[Certificate, bytes]] = {}
        self._shown = certificate_shown if keep else certificate_shown.unkept

    def __call__(self, certificate: Certificate) -> bytes:
        known = self._by_id.get(id(certificate))
        if known is None:
            known = self._by_id[id(certificate)] = (certificate, self._shown(certificate))
        return known[1]


def as_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The record as GET /v1/checks/{check_id} answers it (docs/evidence.md)."""
    reasons = row["reasons"].split()
    return {
        "check_id": row["check_id"],
        "platform": row["platform"],
        "source": row["source"],
        "job_id": row["job_id"],
        "checked_at": timestamp(row["checked_at"]),
        "request": {name: row[name] for name in _REQUEST_FIELDS},
        "decision": row["decision"],
        "reason": reasons[0],
        "reasons": reasons,
        "certificate": None if row["certificate"] is None else json.loads(row["certificate"]),
        "registry_as_of": timestamp(row["registry_as_of"]),
    }


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, as every answer of the API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
