"""Demo registries: showcase records, realistic and distinct certificates, snapshot round trips."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from certcheck.snapshots.demo import demo_certificates
from certcheck.snapshots.reader import (
    COLUMNS,
    RowError,
    UnsupportedFormat,
    detect_format,
    iter_snapshot,
)
from certcheck.snapshots.showcase import showcase_certificates
from certcheck.snapshots.writer import write_snapshot
from certcheck.verification.catalogue import load_catalogue
from certcheck.verification.numbers import normalise_cert_no
from certcheck.verification.records import Certificate, Status

TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def demo() -> list[Certificate]:
    return list(demo_certificates(3000, today=TODAY))


def read_back(path: Path) -> list[Certificate]:
    certificates = []
    with path.open("rb") as stream:
        for item in iter_snapshot(stream, detect_format(filename=path.name), today=TODAY):
            assert not isinstance(item, RowError), item
            certificates.append(item.certificate)
    return certificates


def day_before_fifth_anniversary(issued: date) -> date:
    if (issued.month, issued.day) == (2, 29):
        return date(issued.year + 5, 2, 28)
    return issued.replace(year=issued.year + 5) - timedelta(days=1)


class TestShowcase:
    def test_leads_every_demo_registry(self, demo: list[Certificate]) -> None:
        showcase = showcase_certificates(TODAY)
        assert tuple(demo[: len(showcase)]) == showcase
        assert [c.status for c in showcase] == list(Status)

    def test_laptop_example(self) -> None:
        laptop = showcase_certificates(TODAY)[0]
        assert (laptop.cert_no, laptop.status, laptop.product_code) == (
            "2025010901234567",
            Status.VALID,
            "0901",
        )
        assert laptop.models == ("XK-200", "XK-200S")
        assert laptop.holder == laptop.manufacturer == "Example Electronics Co., Ltd."
        assert laptop.issued_on is not None
        assert laptop.expires_on is not None
        assert laptop.issued_on <= TODAY < laptop.expires_on

    def test_expired_example_is_past_its_date(self) -> None:
        expired = showcase_certificates(TODAY)[-1]
        assert expired.expires_on is not None
        assert expired.expires_on < TODAY

    @pytest.mark.parametrize("count", [0, 1, 3])
    def test_small_count_yields_a_prefix(self, count: int) -> None:
        expected = showcase_certificates(TODAY)[:count]
        assert tuple(demo_certificates(count, today=TODAY)) == expected


class TestDemoCertificates:
    def test_is_deterministic_per_seed(self, demo: list[Certificate]) -> None:
        assert list(demo_certificates(3000, today=TODAY)) == demo
        assert list(demo_certificates(3000, today=TODAY, seed=7)) != demo

    def test_yields_count_distinct_numbers(self, demo: list[Certificate]) -> None:
        assert len(demo) == 3000
        assert len({c.cert_no for c in demo}) == 3000

    def test_numbers_are_canonical_and_consistent(self, demo: list[Certificate]) -> None:
        certified = {
            p.code
            for p in load_catalogue().products.values()
            if p.mode == "third_party" and not p.removed
        }
        for cert in demo:
            assert normalise_cert_no(cert.cert_no, TODAY) == cert.cert_no
            assert cert.cert_no[6:10] == cert.product_code
            assert cert.product_code in certified
            assert cert.issued_on is not None
            assert cert.cert_no[:4] == str(cert.issued_on.year)
        assert set(Counter(c.body_code for c in demo)) == {"01", "12", "22", "31"}

    def test_status_mix(self, demo: list[Certificate]) -> None:
        counts = Counter(c.status for c in demo[len(showcase_certificates(TODAY)) :])
        assert set(counts) == set(Status)
        assert 0.84 < counts[Status.VALID] / sum(counts.values()) < 0.92

    def test_dates_fit_the_status(self, demo: list[Certificate]) -> None:
        for cert in demo:
            assert cert.issued_on is not None
            assert cert.issued_on <= TODAY
            if cert.expires_on is not None:
                assert cert.expires_on == day_before_fifth_anniversary(cert.issued_on)
            if cert.status is Status.VALID:
                assert cert.expires_on is not None
                assert cert.expires_on >= TODAY
                assert (cert.status_changed_on, cert.status_reason) == (None, None)
            else:
                assert cert.status_changed_on is not None
                assert cert.issued_on <= cert.status_changed_on <= TODAY
                assert cert.status_reason
            if cert.status is Status.EXPIRED:
                assert cert.expires_on is not None
                assert cert.expires_on < TODAY

    def test_models(self, demo: list[Certificate]) -> None:
        assert {len(c.models) for c in demo} == {1, 2, 3, 4, 5, 6}
        assert all(len(set(c.models)) == len(c.models) for c in demo)

    def test_negative_count_is_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            demo_certificates(-1, today=TODAY)


class TestWriteSnapshot:
    @pytest.mark.parametrize("name", ["r.csv", "r.csv.gz", "r.jsonl", "r.ndjson.gz"])
    def test_round_trip(self, tmp_path: Path, demo: list[Certificate], name: str) -> None:
        path = tmp_path / name
        assert write_snapshot(path, demo) == len(demo)
        assert read_back(path) == demo
        assert [p.name for p in tmp_path.iterdir()] == [name]

    def test_csv_header(self, tmp_path: Path) -> None:
        path = tmp_path / "r.csv"
        write_snapshot(path, [])
        assert path.read_text(encoding="utf-8") == ",".join(COLUMNS) + "\n"
        assert COLUMNS[:3] == ("cert_no", "status", "holder")

    def test_same_rows_same_bytes(self, tmp_path: Path) -> None:
        first, second = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
        for path in (first, second):
            write_snapshot(path, demo_certificates(50, today=TODAY))
        assert first.read_bytes() == second.read_bytes()

    def test_unknown_format_writes_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(UnsupportedFormat):
            write_snapshot(tmp_path / "r.txt", [])
        assert list(tmp_path.iterdir()) == []

    def test_model_with_separator_fails_and_leaves_nothing(self, tmp_path: Path) -> None:
        cert = showcase_certificates(TODAY)[0]._replace(models=("A|B",))
        with pytest.raises(ValueError, match="separator"):
            write_snapshot(tmp_path / "r.csv", [cert])
        assert list(tmp_path.iterdir()) == []

    def test_jsonl_keeps_a_model_with_separator(self, tmp_path: Path) -> None:
        cert = showcase_certificates(TODAY)[0]._replace(models=("A|B",))
        write_snapshot(tmp_path / "r.jsonl", [cert])
        assert read_back(tmp_path / "r.jsonl") == [cert]
