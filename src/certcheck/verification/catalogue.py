"""The CCC product catalogue (shipped as package data, replaceable by an operator) and what
it requires of a listing. Gaps in the data fail safe: unknown codes require a certificate."""

from __future__ import annotations

import csv
import enum
import io
import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

PRODUCT_MODES = frozenset({"third_party", "sd_A", "sd_B"})
SELF_DECLARATION_MODES = frozenset({"sd_A", "sd_B"})
CONFIDENCES = frozenset({"V", "O", "U"})
_PRODUCT_COLUMNS = ("code", "group", "product", "mode", "status", "confidence", "source")
_GROUP_COLUMNS = ("group", "name", "in_catalogue", "confidence", "source")

_T = TypeVar("_T")
_Row = Mapping[str, str]


class CatalogueError(ValueError):
    """A catalogue file is missing or does not say what the loader can trust."""


class Requirement(enum.StrEnum):
    CERTIFICATE = "certificate"
    SELF_DECLARATION = "self_declaration"
    NOT_REQUIRED = "not_required"


@dataclass(frozen=True, slots=True)
class CatalogueProduct:
    code: str
    group: str
    name: str
    mode: str
    removed: bool
    confidence: str
    source: str


@dataclass(frozen=True, slots=True)
class CatalogueGroup:
    code: str
    name: str
    in_catalogue: bool
    confidence: str
    source: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: str
    effective_from: date
    source: str
    products: Mapping[str, CatalogueProduct]
    groups: Mapping[str, CatalogueGroup]

    def requirement(self, product_code: str | None) -> Requirement:
        code = clean_code(product_code)
        if not is_code(code, 4):
            return Requirement.CERTIFICATE
        product = self.products.get(code)
        if product is not None and product.removed:
            return Requirement.NOT_REQUIRED
        group = self.groups.get(code[:2])
        if group is not None and not group.in_catalogue:
            return Requirement.NOT_REQUIRED
        if product is not None and product.mode in SELF_DECLARATION_MODES:
            return Requirement.SELF_DECLARATION
        return Requirement.CERTIFICATE


def clean_code(value: str | None) -> str:
    """A product code as typed by a merchant, width-folded and stripped ("" when absent)."""
    if value is None:
        return ""
    if value.isascii():  # NFKC leaves ASCII as it is
        return value.strip()
    return unicodedata.normalize("NFKC", value).strip()


def is_code(value: str, length: int) -> bool:
    # isascii() first: isdigit() alone accepts every script's digits.
    return len(value) == length and value.isascii() and value.isdigit()


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Load meta.json, catalogue.csv and groups.csv from `directory` or the package data."""
    root: Traversable = files("certcheck.verification") / "data" if directory is None else directory
    version, effective_from, source = _parse_meta(_read(root, "meta.json"))
    groups = _rows(root, "groups.csv", _GROUP_COLUMNS, _parse_group)
    products = _rows(root, "catalogue.csv", _PRODUCT_COLUMNS, _parse_product)
    for product in products.values():
        group = groups.get(product.group)
        if not product.removed and group is not None and not group.in_catalogue:
            raise CatalogueError(
                f"catalogue.csv: product {product.code} is current but groups.csv says its "
                f"group {group.code} is not in the catalogue"
            )
    return Catalogue(
        version=version,
        effective_from=effective_from,
        source=source,
        products=MappingProxyType(products),
        groups=MappingProxyType(groups),
    )


def _read(root: Traversable, name: str) -> str:
    try:
        # utf-8-sig: operators will edit these files in spreadsheet programs that add a BOM.
        return (root / name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"cannot read catalogue file {name} in {root}: {exc}") from exc


def _parse_meta(text: str) -> tuple[str, date, str]:
    """Version, effective date and source from meta.json; other keys (a note) are free."""
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"meta.json is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise CatalogueError("meta.json must hold a JSON object")
    for key in ("version", "effective_from", "source"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise CatalogueError(f"meta.json: {key!r} must be a non-empty string")
    try:
        effective_from = date.fromisoformat(meta["effective_from"])
    except ValueError as exc:
        raise CatalogueError(f"meta.json: effective_from is not a date: {exc}") from exc
    return meta["version"], effective_from, meta["source"]


def _rows(
    root: Traversable, name: str, columns: tuple[str, ...], parse: Callable[[_Row], _T]
) -> dict[str, _T]:
    """Parse every row of a CSV file, keyed by its first column, naming the line on error."""
    reader = csv.DictReader(io.StringIO(_read(root, name)))
    missing = [column for column in columns if column not in (reader.fieldnames or ())]
    if missing:
        raise CatalogueError(f"{name}: missing column(s) {', '.join(missing)}")
    parsed: dict[str, _T] = {}
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if None in row or any(row[column] is None for column in columns):
            raise CatalogueError(f"{where}: wrong number of fields")
        cells = {column: row[column].strip() for column in columns}
        key = cells[columns[0]]
        if key in parsed:
            raise CatalogueError(f"{where}: duplicate {columns[0]} {key!r}")
        try:
            parsed[key] = parse(cells)
        except CatalogueError as exc:
            raise CatalogueError(f"{where}: {exc}") from None
    return parsed


def _parse_product(row: _Row) -> CatalogueProduct:
    code, mode = row["code"], row["mode"]
    if not is_code(code, 4):
        raise CatalogueError(f"bad product code {code!r}: expected 4 digits")
    group = row["group"].split(maxsplit=1)[0] if row["group"] else ""
    if group != code[:2]:
        raise CatalogueError(f"group {row['group']!r} does not start with {code[:2]}")
    removed = _parse_status(row["status"])
    if mode not in PRODUCT_MODES and not (removed and mode == ""):
        raise CatalogueError(f"unknown mode {mode!r}: expected one of {sorted(PRODUCT_MODES)}")
    return CatalogueProduct(
        code=code,
        group=group,
        name=row["product"],
        mode=mode,
        removed=removed,
        confidence=_provenance(row),
        source=row["source"],
    )


def _parse_group(row: _Row) -> CatalogueGroup:
    code = row["group"]
    if not is_code(code, 2):
        raise CatalogueError(f"bad group code {code!r}: expected 2 digits")
    return CatalogueGroup(
        code=code,
        name=row["name"],
        in_catalogue=_parse_in_catalogue(row["in_catalogue"]),
        confidence=_provenance(row),
        source=row["source"],
    )


def _parse_status(value: str) -> bool:
    """True when removed; "removed" may carry a note such as the year."""
    word = value.split(maxsplit=1)[0].lower() if value else ""
    if word not in ("current", "removed"):
        raise CatalogueError(f"unknown status {value!r}: expected 'current' or 'removed ...'")
    return word == "removed"


def _parse_in_catalogue(value: str) -> bool:
    # Only an explicit "no" may exempt a group: a typo must not let products through.
    word = value.replace("(", " ").split(maxsplit=1)[0].lower() if value else ""
    if word not in ("yes", "no"):
        raise CatalogueError(f"in_catalogue {value!r}: expected 'yes' or 'no ...'")
    return word == "yes"


def _provenance(row: _Row) -> str:
    """The row's confidence, once the row is known to say where it came from."""
    if row["confidence"] not in CONFIDENCES:
        raise CatalogueError(f"confidence {row['confidence']!r}: expected V, O or U")
    if not row["source"]:
        raise CatalogueError("source is empty: every row must say where it came from")
    return row["confidence"]
