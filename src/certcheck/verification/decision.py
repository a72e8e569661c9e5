"""decide(): the verdict on one listing from its certificate record (or its absence) and today."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import date
from typing import TypeVar

from certcheck.verification.catalogue import Catalogue, Requirement, clean_code
from certcheck.verification.numbers import is_absent
from certcheck.verification.records import (
    Certificate,
    Decision,
    ListingClaims,
    Reason,
    Status,
)
from certcheck.verification.text import normalise_text


def _only(reason: Reason) -> Decision:
    return Decision(reason.verdict, (reason,))


MALFORMED_DECISION = _only(Reason.MALFORMED)

_WITHOUT_NUMBER = {
    Requirement.NOT_REQUIRED: _only(Reason.NOT_REQUIRED),
    Requirement.SELF_DECLARATION: _only(Reason.SELF_DECLARED),
    Requirement.CERTIFICATE: _only(Reason.CERT_REQUIRED),
}
_NOT_FOUND = _only(Reason.NOT_FOUND)
_VALID = _only(Reason.VALID)
_STATUS_REASON = {
    Status.VALID: None,
    Status.SUSPENDED: Reason.SUSPENDED,
    Status.REVOKED: Reason.REVOKED,
    Status.CANCELLED: Reason.CANCELLED,
    Status.EXPIRED: Reason.EXPIRED,
}
_SEVERITY = {reason: rank for rank, reason in enumerate(Reason)}


def decide(
    listing: ListingClaims, certificate: Certificate | None, *, today: date, catalogue: Catalogue
) -> Decision:
    """`listing.cert_no` is None or already normalised; malformed numbers get MALFORMED_DECISION."""
    if is_absent(listing.cert_no):
        return _WITHOUT_NUMBER[catalogue.requirement(listing.product_code)]
    if certificate is None:
        return _NOT_FOUND
    reasons = [*_block_reasons(certificate, today), *_review_reasons(listing, certificate)]
    if not reasons:
        return _VALID
    reasons.sort(key=_SEVERITY.__getitem__)
    return Decision(reasons[0].verdict, tuple(reasons))


def _block_reasons(certificate: Certificate, today: date) -> list[Reason]:
    reasons: list[Reason] = []
    status_reason = _STATUS_REASON[certificate.status]
    if status_reason is not None:
        reasons.append(status_reason)
    # A certificate expiring today is still in force today.
    past_expiry = certificate.expires_on is not None and certificate.expires_on < today
    if past_expiry and status_reason is not Reason.EXPIRED:
        reasons.append(Reason.EXPIRED)
    return reasons


def _review_reasons(listing: ListingClaims, certificate: Certificate) -> list[Reason]:
    reasons: list[Reason] = []
    product_code = clean_code(listing.product_code)
    if product_code and product_code != clean_code(certificate.product_code):
        reasons.append(Reason.PRODUCT_MISMATCH)
    # A claim spelt as the registry spells it is covered whatever normalising makes of both:
    # most are, and then the certificate's models and names need not be normalised (a re-check
    # job meets most certificates once, and normalised each one's models for one look).
    claimed = listing.model
    if claimed and claimed not in certificate.models:
        model = normalise_text(claimed)
        if model and model not in _model_keys(certificate.models):
            reasons.append(Reason.MODEL_NOT_COVERED)
    claimed = listing.manufacturer
    if claimed and claimed != certificate.manufacturer and claimed != certificate.holder:
        manufacturer = normalise_text(claimed)
        if manufacturer and manufacturer not in _names(certificate):
            reasons.append(Reason.MANUFACTURER_MISMATCH)
    return reasons


# Certificates can list hundreds of models and the same certificates are checked over and
# over, so the normalised forms of their models and names are worth keeping: for a hot set of
# tens of thousands of numbers (an lru_cache of 1,024 missed on nearly every check of a
# 10,000-number hot set). Plain dicts, emptied when full: no lock, and no tracked object per
# entry for the collector (lru_cache keeps a list per entry) but the sets of long model lists.
_KEPT = 16_384
_SMALL = 8  # models; a tuple up to here: `in` over it is as fast as over a set
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_model_keys_kept: dict[tuple[str, ...], tuple[str, ...] | frozenset[str]] = {}
_names_kept: dict[tuple[str, str | None], tuple[str, ...]] = {}


def _kept(kept: dict[_K, _V], key: _K, make: Callable[[_K], _V]) -> _V:
    value = kept.get(key)
    if value is None:
        if len(kept) >= _KEPT:
            kept.clear()
        value = kept[key] = make(key)
    return value


def _model_keys(models: tuple[str, ...]) -> tuple[str, ...] | frozenset[str]:
    return _kept(_model_keys_kept, models, _normalised_models)


def _normalised_models(models: tuple[str, ...]) -> tuple[str, ...] | frozenset[str]:
    normalised = tuple(normalise_text(model) for model in models)
    return normalised if len(normalised) <= _SMALL else frozenset(normalised)


def _names(certificate: Certificate) -> tuple[str, ...]:
    return _kept(_names_kept, (certificate.holder, certificate.manufacturer), _normalised_names)


def _normalised_names(names: tuple[str, str | None]) -> tuple[str, ...]:
    return tuple(normalise_text(name) for name in names if name)
