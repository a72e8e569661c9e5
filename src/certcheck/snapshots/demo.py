"""Synthetic but realistic registry snapshots for `certcheck demo-registry` and `serve --demo`."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from certcheck.verification.catalogue import CatalogueProduct, load_catalogue
from certcheck.verification.records import Certificate, Status

# Five years for certificates issued since 2009-09-01 (CNCA 2009 No. 42), domain README.
VALIDITY_YEARS = 5
_DAY = timedelta(days=1)
_EARLIEST_TODAY = date(2015, 1, 1)  # expired demo certificates need a past with expiry dates
# Body 01 is CQC (V); 12, 22 and 31 appear on real certificates (O): domain README,
# "Certificate numbers". CQC issues most certificates, so it dominates the mix.
_BODIES, _BODY_WEIGHTS = ("01", "12", "22", "31"), (91, 94, 97, 100)
_STATUS_MIX = (Status.VALID, Status.SUSPENDED, Status.REVOKED, Status.CANCELLED, Status.EXPIRED)
_STATUS_WEIGHTS = (88, 92, 94, 97, 100)  # 88% valid, 4% suspended, 2, 3, 3
_REASONS: Mapping[Status, Sequence[str]] = {
    Status.SUSPENDED: (
        "监督检查不合格 (failed follow-up inspection)",
        "failed follow-up inspection",
        "证书持有人申请暂停 (holder's request)",
        "未按期接受工厂检查 (factory inspection not accepted in time)",
    ),
    Status.REVOKED: (
        "产品抽查不合格 (failed market surveillance sampling)",
        "suspension ended without corrective action",
        "伪造检测报告 (falsified test report)",
    ),
    Status.CANCELLED: (
        "依申请注销 (holder's request)",
        "holder's request",
        "产品停产 (product discontinued)",
        "逾期未换证 (not renewed)",
    ),
    Status.EXPIRED: ("过期失效 (validity period ended)", "certificate reached its expiry date"),
}
_CITIES = (
    ("深圳市", "Shenzhen"),
    ("东莞市", "Dongguan"),
    ("宁波市", "Ningbo"),
    ("苏州市", "Suzhou"),
    ("佛山市", "Foshan"),
    ("厦门市", "Xiamen"),
    ("中山市", "Zhongshan"),
)
_BRANDS_ZH = ("华创", "鑫源", "宏达", "恒通", "美佳", "博远", "智联", "天益", "盛邦", "汇能")
_TRADES_ZH = ("电子", "电器", "科技", "实业", "电源", "智能科技")
_BRANDS_EN = ("Brightway", "Sunvale", "Eastwind", "Silverline", "Bluepeak", "Pinecrest")
_TRADES_EN = ("Electronics", "Electric Appliance", "Technology", "Power Technology")
_MODEL_SUFFIXES = ("S", "A", "Pro", "Plus", "Max", "L", "-2", "E")


def showcase_certificates(today: date) -> tuple[Certificate, ...]:
    """The fixed records that lead every demo registry, for the README and the demo banner."""
    return _showcase(today, _current_products())


def demo_certificates(count: int, *, today: date, seed: int = 20261123) -> Iterator[Certificate]:
    """`count` distinct certificates, the showcase first, the same ones for the same arguments."""
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    if today < _EARLIEST_TODAY:
        raise ValueError(f"demo registries need today on or after {_EARLIEST_TODAY}")
    # Seeded on purpose: demo registries must be reproducible; nothing here is a secret.
    return _generate(count, today, random.Random(seed), _current_products())  # nosec B311


def _current_products() -> dict[str, CatalogueProduct]:
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


def _showcase(today: date, products: Mapping[str, CatalogueProduct]) -> tuple[Certificate, ...]:
    return tuple(_showcase_record(spec, today, products) for spec in _SHOWCASE)


def _showcase_record(
    spec: _Showcase, today: date, products: Mapping[str, CatalogueProduct]
) -> Certificate:
    product = _product(products, spec.product_code)
    ago, month, day = spec.issued
    issued = date(today.year - ago, month, day)
    expires = _expiry(issued)
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
        product_name=spec.product_name or _product_name(product),
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


def _product_name(product: CatalogueProduct) -> str:
    return product.name[:1].upper() + product.name[1:]


def _expiry(issued: date) -> date:
    return _years_later(issued, VALIDITY_YEARS) - _DAY


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February: the anniversary falls on 1 March
        return date(day.year + years, 3, 1)


def _generate(
    count: int, today: date, rng: random.Random, products: Mapping[str, CatalogueProduct]
) -> Iterator[Certificate]:
    showcase = _showcase(today, products)
    yield from showcase[:count]
    numbers = _Numbers(rng, {cert.cert_no for cert in showcase})
    codes = sorted(products)
    for _ in range(count - len(showcase)):
        product = products[rng.choice(codes)]
        status = rng.choices(_STATUS_MIX, cum_weights=_STATUS_WEIGHTS)[0]
        issued, expires, changed_on = _dates(rng, status, today)
        holder, factory = _company(rng)
        manufacturer = holder
        if rng.random() < 0.2:  # a brand owner or importer applies for another's product
            manufacturer, factory = _company(rng)
        yield Certificate(
            cert_no=numbers.draw(
                issued.year, rng.choices(_BODIES, cum_weights=_BODY_WEIGHTS)[0], product.code
            ),
            status=status,
            holder=holder,
            manufacturer=manufacturer,
            factory=factory if rng.random() < 0.6 else manufacturer,
            product_code=product.code,
            product_name=_product_name(product),
            models=_models(rng),
            issued_on=issued,
            expires_on=expires,
            status_changed_on=changed_on,
            status_reason=None if changed_on is None else rng.choice(_REASONS[status]),
        )


class _Numbers:
    """Distinct certificate numbers without remembering them: within one prefix (year, body,
    product) the sequence runs through a permutation of 000000-999999."""

    def __init__(self, rng: random.Random, reserved: set[str]) -> None:
        self._rng, self._reserved = rng, reserved
        self._used: dict[str, tuple[int, int]] = {}  # prefix -> (numbers given, offset)

    def draw(self, year: int, body: str, product_code: str) -> str:
        prefix = f"{year}{body}{product_code}"
        given, offset = self._used.get(prefix) or (0, self._rng.randrange(1_000_000))
        while given < 1_000_000:
            # 7919 is prime and shares no factor with 10**6: the map is a bijection.
            number = f"{prefix}{(given * 7919 + offset) % 1_000_000:06d}"
            given += 1
            if number not in self._reserved:
                self._used[prefix] = (given, offset)
                return number
        raise ValueError(f"demo numbers exhausted for prefix {prefix}")


def _dates(
    rng: random.Random, status: Status, today: date
) -> tuple[date, date | None, date | None]:
    """Issue date, expiry date and status-change date fitting the status."""
    if status is Status.EXPIRED:
        issued = today - rng.randint(VALIDITY_YEARS * 366 + 30, 12 * 365) * _DAY
        return issued, _expiry(issued), _expiry(issued) + _DAY
    if status is Status.CANCELLED and rng.random() < 0.2:
        # Certificates from before 2009-09-01 carry no expiry date (domain README).
        issued = date(2003, 1, 1) + rng.randrange(2400) * _DAY
        return issued, None, date(2010, 1, 1) + rng.randrange(1800) * _DAY
    earliest = _years_later(today, -VALIDITY_YEARS) + _DAY  # the oldest still in force
    issued = earliest + rng.randint(0, (today - earliest).days) * _DAY
    if status is Status.VALID:
        return issued, _expiry(issued), None
    return issued, _expiry(issued), issued + rng.randint(0, (today - issued).days) * _DAY


def _company(rng: random.Random) -> tuple[str, str]:
    """A company name and the name of its factory, Chinese or English."""
    city, _ = rng.choice(_CITIES)
    factory_city, factory_city_en = rng.choice(_CITIES)
    if rng.random() < 0.7:
        # Chinese company names bracket the place with full-width parentheses.
        brand, trade = rng.choice(_BRANDS_ZH), rng.choice(_TRADES_ZH)
        holder = f"{city}{brand}{trade}有限公司"
        return holder, f"{brand}{trade}（{factory_city[:-1]}）有限公司"  # noqa: RUF001
    brand, trade = rng.choice(_BRANDS_EN), rng.choice(_TRADES_EN)
    return f"{brand} {trade} Co., Ltd.", f"{brand} {trade} ({factory_city_en}) Factory"


def _models(rng: random.Random) -> tuple[str, ...]:
    letters = "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=2))
    base = f"{letters}-{rng.randrange(10, 100) * 10}"
    return (base, *(base + suffix for suffix in rng.sample(_MODEL_SUFFIXES, rng.randint(0, 5))))
