"""What a check counts under in the statistics and the misuse signals.

The database does the counting (staged.py), from rows made by records.rows_of; these are the
definitions both follow, and what the tests count with.
"""

from __future__ import annotations

import enum

from certcheck.evidence.records import Checked
from certcheck.verification.catalogue import clean_code
from certcheck.verification.records import Reason

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
    return [SignalKind.MANY_MERCHANTS, *(MISMATCHES[r] for r in reasons if r in MISMATCHES)]
