"""What a lookup page says about a certificate, in Chinese and English, decided as /v1 decides."""

# Chinese sentences take full-width punctuation (GB/T 15834-2011), not ASCII look-alikes.
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from certcheck.registry.store import RegistryInfo
from certcheck.verification.catalogue import Catalogue
from certcheck.verification.decision import decide
from certcheck.verification.numbers import NUMBER_FORMAT_HINT, SHANGHAI
from certcheck.verification.records import Certificate, Listing, Reason, Status, Verdict


@dataclass(frozen=True, slots=True)
class Text:
    zh: str
    en: str


# The registry's own Chinese labels for each status (snapshots/statuses.py cites them).
STATUS_TEXT = {
    Status.VALID: Text("有效", "valid"),
    Status.SUSPENDED: Text("暂停", "suspended"),
    Status.REVOKED: Text("撤销", "revoked"),
    Status.CANCELLED: Text("注销", "cancelled"),
    Status.EXPIRED: Text("过期", "expired"),
}
_WHY_NOT = {
    Reason.SUSPENDED: Text("证书已被暂停。", "The certificate is suspended."),
    Reason.REVOKED: Text("证书已被撤销。", "The certificate has been revoked."),
    Reason.CANCELLED: Text("证书已被注销。", "The certificate has been cancelled."),
    Reason.EXPIRED: Text("证书已过有效期。", "The certificate has expired."),
}

MALFORMED = Text("这不是 CCC 证书编号。", "This is not a CCC certificate number.")
EMPTY = Text("请输入证书编号。", "Please type a certificate number.")
FORMAT_HINT = Text(
    "CCC 证书编号为 16 位数字：发证年份（4 位）、认证机构代码（2 位）、产品代码（4 位）和"
    "序号（6 位），例如 2020010901234567；证书纸上印的证书纸号不是证书编号。",
    NUMBER_FORMAT_HINT,
)
UNAVAILABLE = Text(
    "证书登记数据暂时无法查询，请稍后再试。",
    "The certificate registry cannot be consulted right now; please try again later.",
)


def not_found(number: str) -> Text:
    return Text(
        f"登记数据中没有编号为 {number} 的证书。",
        f"No certificate numbered {number} is in the registry.",
    )


NOT_FOUND_HINT = Text(
    "请核对编号。若产品上印的编号确实如此，该产品的认证无法在此得到证实。",
    "Check the number. If the product carries exactly this number, its certification "
    "cannot be confirmed here.",
)


def too_many(seconds: int) -> Text:
    return Text(
        f"查询过于频繁，请 {seconds} 秒后再试。",
        f"Too many lookups from your address; please try again in {seconds} s.",
    )


@dataclass(frozen=True, slots=True)
class CertificateView:
    cert_no: str
    in_force: bool
    why_not: tuple[Text, ...]
    status: Text
    status_reason: str | None
    status_changed_on: date | None
    holder: str
    manufacturer: str | None
    factory: str | None
    product_code: str
    product_name: str | None
    catalogue_name: str | None
    models: tuple[str, ...]
    issued_on: date | None
    expires_on: date | None


def certificate_view(cert: Certificate, *, today: date, catalogue: Catalogue) -> CertificateView:
    """In force exactly when /v1/verify would allow a listing that claims only this number."""
    decision = decide(Listing(cert_no=cert.cert_no), cert, today=today, catalogue=catalogue)
    product = catalogue.products.get(cert.product_code)
    return CertificateView(
        cert_no=cert.cert_no,
        in_force=decision.verdict is Verdict.ALLOW,
        why_not=tuple(_WHY_NOT[r] for r in decision.reasons if r in _WHY_NOT),
        status=STATUS_TEXT[cert.status],
        status_reason=cert.status_reason,
        status_changed_on=cert.status_changed_on,
        holder=cert.holder,
        manufacturer=cert.manufacturer,
        factory=cert.factory,
        product_code=cert.product_code,
        product_name=cert.product_name,
        catalogue_name=None if product is None else product.name,
        models=cert.models,
        issued_on=cert.issued_on,
        expires_on=cert.expires_on,
    )


def freshness(info: RegistryInfo | None) -> str | None:
    """The registry's as-of time on the registry's own clock (Beijing time), to the minute."""
    if info is None:
        return None
    as_of: datetime = info.as_of
    return as_of.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
