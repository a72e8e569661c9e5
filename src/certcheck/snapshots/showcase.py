"""The fixed records that lead every demo registry (one per status), shown in the README and
the `serve --demo` banner, and the dates and names demo certificates share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import NamedTuple

from certcheck.verification.catalogue import CatalogueProduct, load_catalogue
from certcheck.verification.records import Certificate, Status

# Five years for certificates issued since 2009-09-01 (CNCA 2009 No. 42), domain README.
VALIDITY_YEARS = 5
_DAY = timedelta(days=1)


def showcase_certificates(today: date) -> tuple[Certificate, ...]:
    """The fixed records that lead every demo registry, for the README and the demo banner."""
    return showcase_of(today, current_products())


def current_products() -> dict[str, CatalogueProduct]:
    # Only products certified by a third party carry certificate numbers; self-declared
    # and removed ones never appear in the registry.
    products = load_catalogue().products.values()
    return {p.code: p for p in products if p.mode == "third_party" and not p.removed}


class _Showcase(NamedTuple):
    status: Status
    product_code: str  # wanted; another product of its group when the catalogue lacks it
    issued: tuple[int, int, int]  # years before today's year, month, day
    sequence: str
    holder: str  # also the manufacturer
    factory: str
    models: tuple[str, ...]
    product_name: str | None  # None: the catalogue's name
    change: tuple[int, str] | None  # days ago (expired: the day after expiry), reason


# fmt: off
_SHOWCASE = (
    _Showcase(Status.VALID, "0901", (1, 3, 14), "234567", "Example Electronics Co., Ltd.",
              "Example Electronics (Dongguan) Factory", ("XK-200", "XK-200S"),
              "Portable computer", None),
    _Showcase(Status.SUSPENDED, "1606", (2, 6, 1), "000318", "深圳市华创电子有限公司",
              "华创电子（东莞）有限公司", ("HC-P30", "HC-P30 Pro"), None,  # noqa: RUF001
              (20, "监督检查不合格 (failed follow-up inspection)")),
    _Showcase(Status.REVOKED, "0914", (3, 9, 20), "102244",
              "Brightway Power Technology Co., Ltd.",
              "Brightway Power Technology (Huizhou) Factory", ("BW-PB10", "BW-PB20"), None,
              (60, "产品抽查不合格 (failed market surveillance sampling)")),
    _Showcase(Status.CANCELLED, "0703", (4, 4, 8), "056781", "宁波市恒通电器有限公司",
              "宁波市恒通电器有限公司", ("KFR-35GW", "KFR-35GW/A", "KFR-50LW"), None,
              (200, "依申请注销 (holder's request)")),
    _Showcase(Status.EXPIRED, "2201", (7, 5, 5), "995535", "厦门市美佳儿童用品有限公司",
              "厦门市美佳儿童用品有限公司", ("MJ-S1",), None,
              (0, "过期失效 (validity period ended)")),
)
# fmt: on


def showcase_of(today: date, products: Mapping[str, CatalogueProduct]) -> tuple[Certificate, ...]:
    return tuple(_showcase_record(spec, today, products) for spec in _SHOWCASE)


def _showcase_record(
    spec: _Showcase, today: date, products: Mapping[str, CatalogueProduct]
) -> Certificate:
    product = _product(products, spec.product_code)
    ago, month, day = spec.issued
    issued = date(today.year - ago, month, day)
    expires = expiry(issued)
    changed_on, reason = None, None
    if spec.change is not None:
        days, reason = spec.change
        changed_on = expires + _DAY if spec.status is Status.EXPIRED else today - days * _DAY
    return Certificate(
        cert_no=f"{issued.year}01{product.code}{spec.sequence}",
        status=spec.status,
        holder=spec.holder,
        manufacturer=spec.holder,
        factory=spec.factory,
        product_code=product.code,
        product_name=spec.product_name or product_name(product),
        models=spec.models,
        issued_on=issued,
        expires_on=expires,
        status_changed_on=changed_on,
        status_reason=reason,
    )


def _product(products: Mapping[str, CatalogueProduct], wanted: str) -> CatalogueProduct:
    """`wanted` if the catalogue certifies it, else a product of its group, else any."""
    fallback = sorted(code for code in products if code[:2] == wanted[:2]) or sorted(products)
    if not fallback:
        raise ValueError("the catalogue lists no current third-party product")
    return products.get(wanted) or products[fallback[0]]


def product_name(product: CatalogueProduct) -> str:
    return product.name[:1].upper() + product.name[1:]


def expiry(issued: date) -> date:
    return years_later(issued, VALIDITY_YEARS) - _DAY


def years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February: the anniversary falls on 1 March
        return date(day.year + years, 3, 1)
