"""What a check counts under in the statistics and the misuse signals.

The database does the counting (staged.py), from rows made by records.staged_row or rows_of
(which make the product code, day and reason a check counts under); these are the constants
both use.
"""

from __future__ import annotations

import enum

from certcheck.verification.records import Reason, Verdict

EVIDENCE_IDS = 20  # check ids kept per signal (evidence.md: at most 20)
# The ids are one space-separated text, newest first: ULIDs are of one width, so its first
# EVIDENCE_CHARS characters are whole ids.
EVIDENCE_CHARS = EVIDENCE_IDS * 27 - 1
# The sides of a check_pairs row: the check named a listing, a merchant, or both.
LISTING, MERCHANT, BOTH = "L", "M", "B"


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
# staged.py counts an allowed check's signals without reading its reasons. That holds while
# no reason in MISMATCHES allows and each is more severe than every reason that does, for a
# check's verdict is its most severe reason's (verification/decision.py).
_SEVERITY = list(Reason)
if any(
    mismatch.verdict is Verdict.ALLOW or _SEVERITY.index(allowing) < _SEVERITY.index(mismatch)
    for mismatch in MISMATCHES
    for allowing in Reason
    if allowing.verdict is Verdict.ALLOW
):
    raise RuntimeError("a reason in MISMATCHES can be among an allowed check's reasons")
