"""What a batch of checks adds to the statistics and the misuse signals: a pure function.

`tally` turns checks into counter deltas and membership rows; aggregates.py folds them into
the tables in the transaction that writes the records, so a request never reads raw records.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from certcheck.evidence.records import Checked
from certcheck.verification.catalogue import clean_code
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Reason

EVIDENCE_IDS = 20  # check ids kept per signal (evidence.md: at most 20)
LISTING, MERCHANT = "L", "M"


class SignalKind(enum.StrEnum):
    MANY_MERCHANTS = "MANY_MERCHANTS"
    MANUFACTURER_MISMATCH = "MANUFACTURER_MISMATCH"
    PRODUCT_MISMATCH = "PRODUCT_MISMATCH"
    MODEL_MISMATCH = "MODEL_MISMATCH"


# The reasons that are a claim the certificate does not cover, and the signal each feeds.
_MISMATCHES = {
    Reason.MANUFACTURER_MISMATCH: SignalKind.MANUFACTURER_MISMATCH,
    Reason.PRODUCT_MISMATCH: SignalKind.PRODUCT_MISMATCH,
    Reason.MODEL_NOT_COVERED: SignalKind.MODEL_MISMATCH,
}


# The keys are named tuples, in the column order of their tables: sorting them (the order rows
# are written in) is a C comparison of tuples, and each key is already its row.
class CountKey(NamedTuple):
    day: date  # China Standard Time
    platform: str
    product_code: str  # "" when neither the certificate nor the listing gave one
    source: str
    reason: str  # the answer's `reason`: the most severe one
    decision: str


class Member(NamedTuple):
    """A listing or merchant seen on `day` under these keys."""

    day: date
    platform: str
    kind: str  # LISTING or MERCHANT
    member: str
    product_code: str
    reason: str
    source: str


class SignalKey(NamedTuple):
    platform: str
    cert_no: str
    kind: str


@dataclass(slots=True)
class SignalDelta:
    checks: int = 0
    evidence: list[str] = field(default_factory=list)  # newest first, at most EVIDENCE_IDS
    last_checked_at: datetime | None = None


@dataclass(slots=True)
class Tally:
    counts: dict[CountKey, int] = field(default_factory=dict)
    members: set[Member] = field(default_factory=set)
    signals: dict[SignalKey, SignalDelta] = field(default_factory=dict)
    signal_merchants: set[tuple[SignalKey, str]] = field(default_factory=set)


def product_code_of(item: Checked) -> str:
    """The certificate's product code when one was found, else the listing's claim (read as
    decide() reads it: width-folded, stripped), else ""."""
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
    return [SignalKind.MANY_MERCHANTS, *(_MISMATCHES[r] for r in reasons if r in _MISMATCHES)]


def tally(items: Iterable[Checked]) -> Tally:
    """What `items` add: counters per key, membership rows, signal counters and evidence."""
    out = Tally()
    counts: defaultdict[CountKey, int] = defaultdict(int)
    ids: defaultdict[SignalKey, list[str]] = defaultdict(list)
    for item in items:
        check, asked = item.check, item.requested
        day = today_in_shanghai(check.checked_at)
        code = product_code_of(item)
        reason = check.decision.reason.value
        key = CountKey(
            day, item.platform, code, item.source.value, reason, check.decision.verdict.value
        )
        counts[key] += 1
        for kind, member in ((LISTING, asked.listing_id), (MERCHANT, asked.merchant_id)):
            if member is not None:
                out.members.add(
                    Member(day, item.platform, kind, member, code, reason, item.source.value)
                )
        for signal in signal_kinds(item):
            skey = SignalKey(item.platform, str(check.cert_no), signal.value)
            delta = out.signals.setdefault(skey, SignalDelta())
            delta.checks += 1
            ids[skey].append(check.check_id)
            if delta.last_checked_at is None or check.checked_at > delta.last_checked_at:
                delta.last_checked_at = check.checked_at
            if asked.merchant_id is not None:
                out.signal_merchants.add((skey, asked.merchant_id))
    out.counts = dict(counts)
    for skey, check_ids in ids.items():
        # ULIDs sort by the time they were made: the newest first.
        out.signals[skey].evidence = sorted(check_ids, reverse=True)[:EVIDENCE_IDS]
    return out
