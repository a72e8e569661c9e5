"""Synthetic but realistic registry snapshots for `certcheck demo-registry` and `serve --demo`."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta

from certcheck.snapshots.showcase import (
    VALIDITY_YEARS,
    current_products,
    expiry,
    product_name,
    showcase_of,
    years_later,
)
from certcheck.verification.catalogue import CatalogueProduct
from certcheck.verification.records import Certificate, Status

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


def demo_certificates(count: int, *, today: date, seed: int = 20261123) -> Iterator[Certificate]:
    """`count` distinct certificates, the showcase first, the same ones for the same arguments."""
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    if today < _EARLIEST_TODAY:
        raise ValueError(f"demo registries need today on or after {_EARLIEST_TODAY}")
    # Seeded on purpose: demo registries must be reproducible; nothing here is a secret.
    return _generate(count, today, random.Random(seed), current_products())  # nosec B311


def _generate(
    count: int, today: date, rng: random.Random, products: Mapping[str, CatalogueProduct]
) -> Iterator[Certificate]:
    showcase = showcase_of(today, products)
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
            product_name=product_name(product),
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
        return issued, expiry(issued), expiry(issued) + _DAY
    if status is Status.CANCELLED and rng.random() < 0.2:
        # Certificates from before 2009-09-01 carry no expiry date (domain README).
        issued = date(2003, 1, 1) + rng.randrange(2400) * _DAY
        return issued, None, date(2010, 1, 1) + rng.randrange(1800) * _DAY
    earliest = years_later(today, -VALIDITY_YEARS) + _DAY  # the oldest still in force
    issued = earliest + rng.randint(0, (today - earliest).days) * _DAY
    if status is Status.VALID:
        return issued, expiry(issued), None
    return issued, expiry(issued), issued + rng.randint(0, (today - issued).days) * _DAY


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
