"""The catalogue: requirement() rules (fail safe), the shipped data and operator files."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certcheck.verification.catalogue import (
    Catalogue,
    CatalogueError,
    CatalogueGroup,
    CatalogueProduct,
    Requirement,
    clean_code,
    load_catalogue,
)


def _product(code: str, mode: str, *, removed: bool = False) -> CatalogueProduct:
    return CatalogueProduct(code, code[:2], f"product {code}", mode, removed, "V", "test")


def _group(code: str, *, in_catalogue: bool = True) -> CatalogueGroup:
    return CatalogueGroup(code, f"group {code}", in_catalogue, "V", "test")


CATALOGUE = Catalogue(
    version="test-1",
    effective_from=date(2023, 9, 5),
    source="test",
    products=MappingProxyType(
        {
            p.code: p
            for p in (
                _product("0901", "third_party"),
                _product("0501", "sd_A"),
                _product("0302", "sd_B"),
                _product("0801", "", removed=True),
                _product("1901", "", removed=True),
            )
        }
    ),
    groups=MappingProxyType(
        {
            g.code: g
            for g in (_group("05"), _group("08"), _group("09"), _group("19", in_catalogue=False))
        }
    ),
)


class TestRequirement:
    @pytest.mark.parametrize(
        ("product_code", "expected"),
        [
            pytest.param(None, Requirement.CERTIFICATE, id="absent"),
            pytest.param("", Requirement.CERTIFICATE, id="empty"),
            pytest.param(" \u3000", Requirement.CERTIFICATE, id="white-space"),
            pytest.param("090", Requirement.CERTIFICATE, id="three-digits"),
            pytest.param("09011", Requirement.CERTIFICATE, id="five-digits"),
            pytest.param("08O1", Requirement.CERTIFICATE, id="letter-O"),
            pytest.param("08 01", Requirement.CERTIFICATE, id="inner-space"),
            pytest.param("\u0660\u0668\u0660\u0661", Requirement.CERTIFICATE, id="arabic-0801"),
            pytest.param("0901", Requirement.CERTIFICATE, id="listed-third-party"),
            pytest.param("0999", Requirement.CERTIFICATE, id="unknown-in-catalogue-group"),
            pytest.param("1401", Requirement.CERTIFICATE, id="group-not-listed"),
            pytest.param("0501", Requirement.SELF_DECLARATION, id="sd_A"),
            pytest.param("0302", Requirement.SELF_DECLARATION, id="sd_B-group-not-listed"),
            pytest.param("0801", Requirement.NOT_REQUIRED, id="removed"),
            pytest.param(
                " \uff10\uff18\uff10\uff11 ",
                Requirement.NOT_REQUIRED,
                id="removed-full-width-padded",
            ),
            pytest.param("1901", Requirement.NOT_REQUIRED, id="removed-in-withdrawn-group"),
            pytest.param("1999", Requirement.NOT_REQUIRED, id="unknown-in-withdrawn-group"),
        ],
    )
    def test_rules(self, product_code: str | None, expected: Requirement) -> None:
        assert CATALOGUE.requirement(product_code) is expected

    @pytest.mark.parametrize(
        ("product_code", "expected"),
        [
            pytest.param("0901", Requirement.CERTIFICATE, id="microcomputers"),
            pytest.param("1606", Requirement.CERTIFICATE, id="mobile-phones"),
            pytest.param("0501", Requirement.SELF_DECLARATION, id="electric-drills-sd_A"),
            pytest.param("0205", Requirement.SELF_DECLARATION, id="fuse-links-sd_B"),
            pytest.param("0801", Requirement.NOT_REQUIRED, id="speakers-removed-2022"),
            pytest.param("0908", Requirement.NOT_REQUIRED, id="game-consoles-removed-2018"),
            pytest.param("1901", Requirement.NOT_REQUIRED, id="security-group-withdrawn"),
            pytest.param("2499", Requirement.CERTIFICATE, id="gas-appliances-unknown-code"),
            pytest.param("9901", Requirement.CERTIFICATE, id="unlisted-group"),
        ],
    )
    def test_shipped_data(self, product_code: str, expected: Requirement) -> None:
        assert load_catalogue().requirement(product_code) is expected


class TestLoadPackageData:
    def test_meta(self) -> None:
        catalogue = load_catalogue()
        assert catalogue.version == "samr-2023-36-partial-1"
        assert catalogue.effective_from == date(2023, 9, 5)
        assert catalogue.source.startswith("SAMR 2023 No. 36")

    def test_rows_keep_their_provenance(self) -> None:
        catalogue = load_catalogue()
        assert len(catalogue.products) == 61
        assert len(catalogue.groups) == 20
        assert catalogue.products["0718"] == CatalogueProduct(
            code="0718",
            group="07",
            name="rice cookers",
            mode="third_party",
            removed=False,
            confidence="O",
            source="real certificate 2017010718995078 on an IH rice cooker",
        )
        assert catalogue.products["0802"].removed
        assert catalogue.products["0802"].mode == ""
        assert not catalogue.groups["19"].in_catalogue
        assert catalogue.groups["10"].confidence == "U"
        assert all(p.source and p.confidence in "VOU" for p in catalogue.products.values())


META = '{"version": "op-7", "effective_from": "2025-01-01", "source": "operator", "note": "x"}\n'
PRODUCTS = (
    "code,group,product,mode,status,confidence,source\n"
    "0901,09 information technology equipment,microcomputers,third_party,current,V,s1\n"
    "0909,09 information technology equipment,learning machines,,removed 2018,V,s2\n"
    "0501,05 electric tools,electric drills,sd_A,current,U,s3\n"
)
GROUPS = (
    "group,name,in_catalogue,confidence,source\n"
    "05,electric tools,yes,V,g1\n"
    "09,information technology equipment,Yes,V,g2\n"
    '19,security protection products,"no (rule withdrawn, 2022)",V,g3\n'
)


def _write(directory: Path, **overrides: str) -> Path:
    files = {"meta.json": META, "catalogue.csv": PRODUCTS, "groups.csv": GROUPS}
    files.update({name.replace("_", "."): text for name, text in overrides.items()})
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


class TestLoadDirectory:
    def test_operator_catalogue(self, tmp_path: Path) -> None:
        catalogue = load_catalogue(_write(tmp_path))
        assert (catalogue.version, catalogue.effective_from) == ("op-7", date(2025, 1, 1))
        assert sorted(catalogue.products) == ["0501", "0901", "0909"]
        assert catalogue.requirement("0909") is Requirement.NOT_REQUIRED
        assert catalogue.requirement("0501") is Requirement.SELF_DECLARATION
        assert catalogue.requirement("1905") is Requirement.NOT_REQUIRED
        assert catalogue.requirement("0801") is Requirement.CERTIFICATE

    def test_byte_order_mark_is_accepted(self, tmp_path: Path) -> None:
        _write(tmp_path, groups_csv="\ufeff" + GROUPS)
        assert "05" in load_catalogue(tmp_path).groups

    @pytest.mark.parametrize(
        ("file", "text", "message"),
        [
            pytest.param("meta_json", "{", "not valid JSON", id="meta-not-json"),
            pytest.param("meta_json", "[]", "JSON object", id="meta-not-object"),
            pytest.param(
                "meta_json",
                '{"version": "v", "source": "s"}',
                "effective_from",
                id="meta-missing-key",
            ),
            pytest.param(
                "meta_json",
                META.replace("2025-01-01", "Jan 2025"),
                "not a date",
                id="meta-bad-date",
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS.replace(",mode,", ",kind,"),
                r"missing column\(s\) mode",
                id="missing-column",
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS.replace("0901,", "901,"),
                "bad product code",
                id="short-code",
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS.replace("0901,", "09a1,"),
                "bad product code",
                id="letter-in-code",
            ),
            pytest.param(
                "catalogue_csv", PRODUCTS.replace("sd_A", "sd_C"), "unknown mode", id="unknown-mode"
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS.replace("third_party", ""),
                "unknown mode",
                id="current-without-mode",
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS.replace("current,U", "active,U"),
                "unknown status",
                id="unknown-status",
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS.replace(",U,s3", ",maybe,s3"),
                "confidence",
                id="unknown-confidence",
            ),
            pytest.param(
                "catalogue_csv", PRODUCTS.replace(",s3", ","), "source is empty", id="no-source"
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS.replace("05 electric", "06 electric"),
                "does not start with 05",
                id="group-mismatch",
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS + PRODUCTS.splitlines()[1] + "\n",
                "line 5: duplicate code '0901'",
                id="duplicate-code",
            ),
            pytest.param(
                "catalogue_csv", PRODUCTS + "0902,09 x\n", "wrong number of fields", id="short-row"
            ),
            pytest.param(
                "catalogue_csv",
                PRODUCTS + "1901,19 x,y,third_party,current,V,s\n",
                "group 19 is not in the catalogue",
                id="current-in-withdrawn-group",
            ),
            pytest.param(
                "groups_csv", GROUPS.replace("05,", "5,"), "bad group code", id="bad-group-code"
            ),
            pytest.param(
                "groups_csv", GROUPS.replace("yes", "yse"), "in_catalogue", id="in-catalogue-typo"
            ),
            pytest.param(
                "groups_csv",
                GROUPS + "21,decoration,,V,g\n",
                "in_catalogue",
                id="in-catalogue-empty",
            ),
            pytest.param("groups_csv", "", "missing column", id="empty-file"),
        ],
    )
    def test_bad_files_are_refused(
        self, tmp_path: Path, file: str, text: str, message: str
    ) -> None:
        with pytest.raises(CatalogueError, match=message):
            load_catalogue(_write(tmp_path, **{file: text}))

    @pytest.mark.parametrize("name", ["meta.json", "catalogue.csv", "groups.csv"])
    def test_missing_file(self, tmp_path: Path, name: str) -> None:
        (_write(tmp_path) / name).unlink()
        with pytest.raises(CatalogueError, match=f"cannot read catalogue file {re.escape(name)}"):
            load_catalogue(tmp_path)

    def test_not_utf8(self, tmp_path: Path) -> None:
        (_write(tmp_path) / "groups.csv").write_bytes(GROUPS.encode("utf-16"))
        with pytest.raises(CatalogueError, match=r"cannot read catalogue file groups\.csv"):
            load_catalogue(tmp_path)


@given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=0x7F))))
def test_a_code_is_cleaned_alike_with_or_without_the_ascii_short_way(value: str) -> None:
    assert clean_code(value) == unicodedata.normalize("NFKC", value).strip()
    assert clean_code(None) == ""
