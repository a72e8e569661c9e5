"""Staging records: the fast path makes, for every row, what the validating path makes."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from datetime import date
from typing import Any

import pytest

from certcheck.registry.rows import FIELDS
from certcheck.snapshots.demo import demo_certificates
from certcheck.snapshots.reader import (
    COLUMNS,
    RowError,
    SnapshotFormat,
    SnapshotKind,
    SnapshotRow,
    certificate_to_snapshot_dict,
    iter_snapshot,
)
from certcheck.snapshots.records import Record, clean_record_maker, record_of
from certcheck.snapshots.staging import CERT_COLUMNS

TODAY = date(2026, 11, 23)
CSV = SnapshotFormat(SnapshotKind.CSV, gzip=False)
JSONL = SnapshotFormat(SnapshotKind.JSONL, gzip=False)
GOOD: dict[str, Any] = {
    "cert_no": "2020010901234567",
    "status": "valid",
    "holder": "Example Electronics Co., Ltd.",
    "manufacturer": "Example Electronics Co., Ltd.",
    "factory": "Example Electronics (Dongguan) Factory",
    "product_code": "0901",
    "product_name": "Portable computer",
    "models": ["XK-200", "XK-200S"],
    "issued_on": "2022-03-14",
    "expires_on": "2027-03-13",
    "status_changed_on": None,
    "status_reason": None,
}
# Rows on either side of every check the fast path makes: each must come out as the
# validating path has it, a record or the same RowError.
VARIANTS: list[dict[str, Any]] = [
    {},
    {"cert_no": " 2020010901234567"},
    {"cert_no": "2020-0109-01234567"},
    {"cert_no": "CCC:2020010901234567"},
    {"cert_no": "\uff12\uff10\uff12\uff10010901234567"},
    {"cert_no": "2001010901234567"},
    {"cert_no": "2002010901234567"},
    {"cert_no": f"{TODAY.year}010901234567"},
    {"cert_no": f"{TODAY.year + 1}010901234567"},
    {"cert_no": "202001090123456"},
    {"cert_no": "20200109012345678"},
    {"cert_no": ""},
    {"status": "VALID"},
    {"status": " 已撤销 "},
    {"status": "注销 (非申请)"},
    {"status": "无效"},
    {"status": ""},
    {"holder": "  宏达  "},
    {"holder": " "},
    {"holder": "x" * 512},
    {"holder": "x" * 513},
    {"holder": "a\x00b"},
    {"manufacturer": ""},
    {"manufacturer": "  "},
    {"factory": "f\x00"},
    {"product_name": "y" * 600},
    {"status_reason": " reason "},
    {"status_reason": "\x00"},
    {"product_code": ""},
    {"product_code": " 2201 "},
    {"product_code": "\uff10\uff19\uff10\uff12"},
    {"product_code": "090"},
    {"product_code": "09a1"},
    {"models": []},
    {"models": [" A-1 ", "", "A-1S ", "  "]},
    {"models": ["型号 X", 'q"uote', "back\\slash", "tab\tin"]},
    {"models": ["m" * 256]},
    {"models": ["m" * 257]},
    {"models": [f"M{n}" for n in range(2000)]},
    {"models": [f"M{n}" for n in range(2001)]},
    {"models": ["nul\x00"]},
    {"issued_on": ""},
    {"issued_on": " 2022-03-14 "},
    {"issued_on": "2022-3-14"},
    {"issued_on": "2022-02-30"},
    {"issued_on": "14/03/2022"},
    {"expires_on": ""},
    {"status_changed_on": "2026-01-05", "status": "suspended", "status_reason": "audit"},
]
# Only JSON can carry these: values of other types, lone surrogates, absent members.
JSON_ONLY: list[dict[str, Any]] = [
    {"cert_no": 2020010901234567},
    {"cert_no": None},
    {"status": None},
    {"status": ["valid"]},
    {"holder": 5},
    {"holder": None},
    {"manufacturer": None},
    {"manufacturer": 7},
    {"product_code": None},
    {"product_code": 901},
    {"models": None},
    {"issued_on": None, "status_changed_on": None},
    {"models": "XK-200"},
    {"models": ["a", 1]},
    {"models": {"a": 1}},
    {"issued_on": None},
    {"issued_on": 20220314},
    {"issued_on": ["2022-03-14"]},
    {"holder": "lone \ud800 surrogate"},
    {"models": ["\udfff"]},
]


def csv_bytes(rows: Iterable[dict[str, Any]], columns: Iterable[str] = COLUMNS) -> bytes:
    import csv

    names = list(columns)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    for row in rows:
        writer.writerow(["|".join(row[n]) if n == "models" else (row[n] or "") for n in names])
    return out.getvalue().encode()


def jsonl_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def validated(data: bytes, fmt: SnapshotFormat, postgres: bool) -> list[Record | RowError]:
    """What the validating path makes of each row: certificate_row, then its record."""
    items = iter_snapshot(io.BytesIO(data), fmt, today=TODAY)
    return [i if isinstance(i, RowError) else record_of(i, postgres=postgres) for i in items]


def fast(data: bytes, fmt: SnapshotFormat, postgres: bool) -> list[Record | RowError]:
    rows = iter_snapshot(io.BytesIO(data), fmt, today=TODAY)
    return list(rows.records(postgres=postgres))


@pytest.fixture(scope="module")
def demo() -> list[dict[str, Any]]:
    return [certificate_to_snapshot_dict(c) for c in demo_certificates(3000, today=TODAY)]


@pytest.mark.parametrize("postgres", [True, False], ids=["postgresql", "sqlite"])
class TestSamePathOutcome:
    @pytest.mark.parametrize("fmt", [CSV, JSONL], ids=["csv", "jsonl"])
    def test_demo_registry(
        self, demo: list[dict[str, Any]], fmt: SnapshotFormat, postgres: bool
    ) -> None:
        data = csv_bytes(demo) if fmt is CSV else jsonl_bytes(demo)
        made = fast(data, fmt, postgres)
        assert made == validated(data, fmt, postgres)
        assert len(made) == len(demo)

    @pytest.mark.parametrize("fmt", [CSV, JSONL], ids=["csv", "jsonl"])
    def test_every_variant(self, fmt: SnapshotFormat, postgres: bool) -> None:
        rows = [GOOD | change for change in VARIANTS]
        data = csv_bytes(rows) if fmt is CSV else jsonl_bytes(rows)
        made = fast(data, fmt, postgres)
        assert made == validated(data, fmt, postgres)
        assert sum(isinstance(m, RowError) for m in made) > 10  # the variants do go wrong

    def test_json_only_variants(self, postgres: bool) -> None:
        data = jsonl_bytes(GOOD | change for change in JSON_ONLY)
        assert fast(data, JSONL, postgres) == validated(data, JSONL, postgres)

    def test_members_absent_from_json(self, postgres: bool) -> None:
        data = jsonl_bytes([{"cert_no": GOOD["cert_no"], "status": "valid", "holder": "Co."}])
        assert fast(data, JSONL, postgres) == validated(data, JSONL, postgres)

    def test_csv_without_optional_columns(self, postgres: bool) -> None:
        rows = [GOOD | change for change in VARIANTS]
        data = csv_bytes(rows, columns=("holder", "cert_no", "status", "issued_on"))
        assert fast(data, CSV, postgres) == validated(data, CSV, postgres)

    def test_ragged_and_duplicate_rows(self, postgres: bool) -> None:
        good = csv_bytes([GOOD]).decode()
        data = (good + "2021010901234567,valid\n" + good.splitlines()[1] + "\n,,,\n").encode()
        made = fast(data, CSV, postgres)
        assert made == validated(data, CSV, postgres)
        assert isinstance(made[1], RowError)
        assert made[1].cert_no == "2021010901234567"  # kept: its number could be read


class TestCleanRows:
    @pytest.mark.parametrize("postgres", [True, False], ids=["postgresql", "sqlite"])
    def test_demo_rows_take_the_fast_path(self, demo: list[dict[str, Any]], postgres: bool) -> None:
        clean = clean_record_maker(TODAY, postgres=postgres, pipe_models=False)
        made = [clean(n, tuple(row[c] for c in COLUMNS)) for n, row in enumerate(demo, 1)]
        assert None not in made
        assert made == validated(jsonl_bytes(demo), JSONL, postgres)

    def test_unclean_rows_do_not(self) -> None:
        clean = clean_record_maker(TODAY, postgres=True, pipe_models=False)
        unclean: list[dict[str, Any]] = [
            {"cert_no": " 2020010901234567"},
            {"cert_no": "2020-0109-01234567"},
            {"cert_no": "\uff12\uff10\uff12\uff10010901234567"},
            {"cert_no": "2001010901234567"},
            {"cert_no": f"{TODAY.year + 1}010901234567"},
            {"holder": " "},
            {"holder": "a\x00b"},
            {"product_code": " 2201 "},
            {"models": ["m" * 257]},
            {"issued_on": "2022-02-30"},
            *(v for v in JSON_ONLY if None not in v.values()),
        ]
        for change in unclean:
            row = GOOD | change
            assert clean(2, tuple(row[c] for c in COLUMNS)) is None, change

    def test_record_order_is_the_staging_tables(self) -> None:
        assert tuple(COLUMNS) == FIELDS
        assert [*FIELDS, "digest"] == CERT_COLUMNS

    def test_models_json_is_what_json_dumps_writes(self) -> None:
        models = ["型号 X", 'q"uote', "back\\slash", "tab\tin", "\x01", "é\U0001f600"]
        clean = clean_record_maker(TODAY, postgres=True, pipe_models=False)
        record = clean(2, tuple((GOOD | {"models": models})[c] for c in COLUMNS))
        assert record is not None
        assert record[8] == json.dumps(models)


def test_gzip_csv_rows_and_lines(demo: list[dict[str, Any]]) -> None:
    data = gzip.compress(csv_bytes(demo[:50]))
    made = fast(data, SnapshotFormat(SnapshotKind.CSV, gzip=True), True)
    assert [r[0] for r in made if not isinstance(r, RowError)] == list(range(2, 52))
    assert all(
        isinstance(item, SnapshotRow)
        for item in iter_snapshot(
            io.BytesIO(data), SnapshotFormat(SnapshotKind.CSV, gzip=True), today=TODAY
        )
    )
