"""What a batch of checks adds to the statistics and the misuse signals: a pure function.

`tally` turns checks into counter deltas and membership rows; aggregates.py folds them into
the tables in the transaction that writes the records, so a request never reads raw records.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from certcheck.checking import Check
from certcheck.evidence.records import Checked, Codes, Requested, Source
from certcheck.verification.catalogue import clean_code
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Reason, Verdict

EVIDENCE_IDS = 20  # check ids kept per signal (evidence.md: at most 20)
# The ids are one space-separated text, newest first: ULIDs are of one width, so its first
# EVIDENCE_CHARS characters are whole ids.
EVIDENCE_CHARS = EVIDENCE_IDS * 27 - 1
LISTING, MERCHANT = "L", "M"


class SignalKind(enum.StrEnum):
    MANY_MERCHANTS = "MANY_MERCHANTS"
    MANUFACTURER_MISMATCH = "MANUFACTURER_MISMATCH"
    PRODUCT_MISMATCH = "PRODUCT_MISMATCH"
    MODEL_MISMATCH = "MODEL_MISMATCH"


# The reasons that are a claim the certificate does not cover, and the signal each feeds.
MISMATCHES = {
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


# A batch makes thousands of membership rows and signal keys: they are plain tuples in the
# column order of Member and SignalKey (making a NamedTuple costs a Python call each).
MemberRow = tuple[date, str, str, str, str, str, str]
SignalId = tuple[str, str, str]


@dataclass(slots=True)
class Tally:
    counts: dict[CountKey, int] = field(default_factory=dict)
    members: set[MemberRow] = field(default_factory=set)
    signals: dict[SignalId, SignalDelta] = field(default_factory=dict)
    signal_merchants: set[tuple[SignalId, str]] = field(default_factory=set)


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
    return [SignalKind(kind) for kind in _kinds_of(item.check.decision.reasons)]


# Enum members' `.value` is a Python-level descriptor; a dict lookup is not. The members are
# str, so each maps to a plain str of its value.
_PLAIN: dict[str, str] = {
    member: member.value for kind in (Reason, Verdict, Source, SignalKind) for member in kind
}
_KINDS: dict[tuple[Reason, ...], tuple[str, ...]] = {}


def _kinds_of(reasons: tuple[Reason, ...]) -> tuple[str, ...]:
    """signal_kinds' values for a check of a number with these reasons (few combinations)."""
    kinds = _KINDS.get(reasons)
    if kinds is None:
        mismatches = (MISMATCHES[r].value for r in reasons if r in MISMATCHES)
        kinds = _KINDS[reasons] = (SignalKind.MANY_MERCHANTS.value, *mismatches)
    return kinds


def tally(items: Iterable[Checked]) -> Tally:
    """What `items` add: counters per key, membership rows, signal counters and evidence."""
    grouped: dict[tuple[str, Source], list[tuple[Check, Requested]]] = {}
    for item in items:
        key = (item.platform, item.source)
        lines = grouped.get(key)
        if lines is None:
            grouped[key] = lines = []
        lines.append((item.check, item.requested))
    out = Tally()
    for (platform, source), lines in grouped.items():
        tally_lines(lines, platform, source, out)
    return out


def tally_lines(
    lines: Iterable[tuple[Check, Requested]], platform: str, source: Source, into: Tally
) -> None:
    """Add to `into` what checks of one platform and source add (a job's chunk, say). One
    loop with everything it looks up made once per distinct value: this runs for every
    line of every job."""
    plain, kinds_of = _PLAIN, _kinds_of
    source_value = plain[source]
    counts: dict[tuple[date, str, str, str, str, str], int] = {}
    members_add = into.members.add
    merchants_add = into.signal_merchants.add
    groups: dict[SignalId, list[Check]] = {}
    days: dict[datetime, date] = {}
    code_of = Codes()
    for check, asked in lines:
        at = check.checked_at
        day = days.get(at)
        if day is None:
            day = days[at] = today_in_shanghai(at)
        code = code_of(check.certificate, asked.product_code)
        decision = check.decision
        reasons = decision.reasons
        reason = plain[reasons[0]]
        key = (day, platform, code, source_value, reason, plain[decision.verdict])
        counts[key] = counts.get(key, 0) + 1
        listing, merchant = asked.listing_id, asked.merchant_id
        if listing is not None:
            members_add((day, platform, LISTING, listing, code, reason, source_value))
        if merchant is not None:
            members_add((day, platform, MERCHANT, merchant, code, reason, source_value))
        cert_no = check.cert_no
        if cert_no is not None:
            for kind in kinds_of(reasons):
                skey = (platform, cert_no, kind)
                group = groups.get(skey)
                if group is None:
                    groups[skey] = [check]
                else:
                    group.append(check)
                if merchant is not None:
                    merchants_add((skey, merchant))
    for key, n in counts.items():
        count_key = CountKey._make(key)
        into.counts[count_key] = into.counts.get(count_key, 0) + n
    for skey, checks in groups.items():
        _add_signal(into.signals, skey, checks)


def _add_signal(signals: dict[SignalId, SignalDelta], skey: SignalId, checks: list[Check]) -> None:
    delta = signals.get(skey)
    if delta is None:
        delta = signals[skey] = SignalDelta()
    if len(checks) == 1 and not delta.evidence:  # most keys of a batch: one check
        check = checks[0]
        delta.checks, delta.evidence, delta.last_checked_at = 1, [check.check_id], check.checked_at
        return
    delta.checks += len(checks)
    # ULIDs sort by the time they were made: the newest first.
    ids = delta.evidence + [check.check_id for check in checks]
    delta.evidence = sorted(ids, reverse=True)[:EVIDENCE_IDS]
    newest = max(check.checked_at for check in checks)
    if delta.last_checked_at is None or newest > delta.last_checked_at:
        delta.last_checked_at = newest
