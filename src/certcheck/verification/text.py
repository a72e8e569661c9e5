"""Normalisation of free text (models, holder and manufacturer names) for comparison."""

from __future__ import annotations

import unicodedata


def normalise_text(value: str) -> str:
    """Width-, case- and white-space-insensitive form of `value`.

    The NFKC after casefold follows Unicode's NFKC_Casefold recipe: casefolding can
    undo a composition, and without it the result would not be stable when applied twice.
    """
    if value.isascii():  # NFKC leaves ASCII as it is, and casefolds it to lower case
        return " ".join(value.lower().split())
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return " ".join(folded.split())
