"""Hostile input at every endpoint that takes some, on both databases.

Whatever arrives: no 5xx, every error a problem document with a `code`, and no `allow`
that api.md's rules (the independent oracle of tests/verification/test_properties.py)
would not give. Re-check uploads always finish, their bad lines reported as MALFORMED.
"""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.verification.records import Certificate, Listing, Status
from tests.api.helpers import PROBLEM, assert_problem, finished, results, run_job, submit
from tests.conftest import load, today
from tests.evidence.helpers import record
from tests.factories import cert
from tests.verification.test_properties import oracle_decision, oracle_number

VALID = "2024010901234567"
REGISTRY = {
    c.cert_no: c
    for c in [
        cert(VALID),
        cert("2024010901234568", status=Status.REVOKED),
        cert("2024010901234569", expires_on=today().replace(year=2024)),
    ]
}


def in_script(text: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(ch)) for ch in text)


HOSTILE = {
    "arabic-indic": in_script(VALID, "\u0660"),
    "extended-arabic-indic": in_script(VALID, "\u06f0"),
    "devanagari": in_script(VALID, "\u0966"),
    "one-bengali-digit": VALID[:-1] + "\u09ed",
    "full-width": in_script(VALID, "\uff10"),  # NFKC makes it VALID: allow is right
    "superscript-two": "\u00b2" + VALID[1:],  # likewise
    "O-for-0": VALID.replace("0", "O"),
    "l-for-1": VALID.replace("1", "l"),
    "zero-width-space": VALID[:4] + "\u200b" + VALID[4:],
    "zero-width-joiner": VALID[:8] + "\u200d" + VALID[8:],
    "bom": "\ufeff" + VALID,
    "nul-after": VALID + "\x00",
    "nul-inside": VALID[:8] + "\x00" + VALID[8:],
    "nul-only": "\x00",
    "rtl-override": "\u202e" + VALID,
    "combining-accent": VALID + "\u0301",
    "unicode-dashes": f"{VALID[:4]}\u2010{VALID[4:10]}\u2212{VALID[10:]}",
    "sql-or": VALID + "' OR '1'='1",
    "sql-drop": "'; DROP TABLE certificates; --",
    "sql-comment-dashes": VALID + "--",  # dashes are removed: allow is right
    "like-wildcards": "2024%",
    "like-underscore": VALID[:15] + "_",
    "csv-formula": "=cmd|' /C calc'!A0",
    "csv-formula-number": "=" + VALID,
    "emoji": "\U0001f642" + VALID,
    "revoked-full-width": in_script("2024010901234568", "\uff10"),
    "white-space-only": "\u3000 \t",
    "longest": "2" * 64,
    "beyond-64-bits": "9" * 19,  # a cursor no row id can reach
}
HOSTILE_BODIES = {
    "100k-nested-arrays": b"[" * 100_000 + b"]" * 100_000,
    "50k-nested-objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "deep-field": b'{"cert_no": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep-item": b'{"items": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    "5000-digit-integer": b'{"cert_no": ' + b"1" * 5_000 + b"}",
    "float-overflow": b'{"cert_no": 1e999999}',
    "duplicate": b'{"cert_no": "x", "cert_no": "%s"}' % VALID.encode(),
    "lone-surrogate": b'{"cert_no": "\\ud800"}',
    "reversed-surrogates": b'{"cert_no": "\\udfff\\ud800"}',
    "raw-nul-in-string": b'{"cert_no": "2024\x000109"}',
    "invalid-utf8": b'{"cert_no": "\xff\xfe"}',
    "gb18030": '{"model": "型号"}'.encode("gb18030"),
    "utf8-bom": b"\xef\xbb\xbf{}",
    "utf16": '{"cert_no": "x"}'.encode("utf-16"),
    "empty": b"",
    "nul": b"\x00",
    "null": b"null",
    "nan": b'{"cert_no": NaN}',
}


FIELDS = ("cert_no", "product_code", "model", "manufacturer", "listing_id", "merchant_id")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, max_registry_age=3600, job_chunk_lines=7, job_poll_interval=0.1
    )


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, REGISTRY.values())
    await client.get("/readyz")  # the store adopts the registry now, not at its next poll


def expected_reasons(item: dict[str, Any]) -> list[str]:
    raw = item.get("cert_no")
    number = None if raw is None else oracle_number(raw, today())
    if raw is not None and raw.strip() and number is None:
        return ["MALFORMED"]
    listing = Listing(number, item.get("product_code"), item.get("model"), item.get("manufacturer"))
    found: Certificate | None = REGISTRY.get(number or "")
    return oracle_decision(listing, found, today())


def assert_decided(item: dict[str, Any], answer: dict[str, Any]) -> None:
    """The answer is the oracle's: in particular never an allow it would not give."""
    assert answer["reasons"] == expected_reasons(item), (item, answer)
    assert answer["listing_id"] == item.get("listing_id")


def assert_problem_document(response: httpx.Response, case: str = "") -> None:
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:300])
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body["code"], str)
    assert body["code"]


def items() -> list[dict[str, Any]]:
    """Every hostile string in every field, beside the valid number."""
    return [
        {"cert_no": VALID, field: value, "listing_id": f"{field}:{name}"}
        | ({"listing_id": value} if field == "listing_id" else {})
        for name, value in HOSTILE.items()
        for field in FIELDS
    ]


@pytest.mark.usefixtures("loaded")
class TestVerify:
    async def test_hostile_strings_in_every_field(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        answered: list[tuple[dict[str, Any], str]] = []
        for item in items():
            response = await client.post(app.url_path_for("verify_one"), json=item, headers=headers)
            if _unstorable(item):  # no text column stores a NUL: refused, never half-recorded
                body = assert_problem(response, 422, "VALIDATION_FAILED")
                assert body["errors"][0]["type"] == "string_nul", body
                continue
            assert response.status_code == 200, (item, response.text)
            assert_decided(item, response.json())
            answered.append((item, response.json()["check_id"]))
        # Every answered check is recorded as asked: one record the database refused would
        # hold back every record flushed with it.
        for item, check_id in answered:
            got = await record(client, check_id, headers, within=5.0)
            assert got["request"]["listing_id"] == item["listing_id"], (item, got)

    async def test_hostile_strings_in_a_batch(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        batch = [item for item in items() if not _unstorable(item)]
        url = app.url_path_for("verify_batch")
        response = await client.post(url, json={"items": batch}, headers=headers)
        assert response.status_code == 200, response.text
        for item, answer in zip(batch, response.json()["results"], strict=True):
            assert_decided(item, answer)

    async def test_hostile_bodies(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        sent = {**headers, "Content-Type": "application/json"}
        wrong: dict[str, str] = {}  # every case is tried, so one report names all that fail
        for endpoint in ("verify_one", "verify_batch"):
            for name, body in HOSTILE_BODIES.items():
                response = await client.post(app.url_path_for(endpoint), content=body, headers=sent)
                try:
                    if response.status_code != 200:
                        assert_problem_document(response, name)
                    else:  # only a BOM-prefixed {} may be read; it asks about nothing
                        assert body.startswith(b"\xef\xbb\xbf")
                        assert response.json().get("decision") != "allow"
                except AssertionError:
                    wrong[f"{endpoint}:{name}"] = f"{response.status_code} {response.text[:120]}"
        assert wrong == {}


@pytest.mark.usefixtures("loaded")
class TestCertificateLookups:
    async def test_hostile_path(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        path = app.url_path_for("get_certificate", cert_no="X").removesuffix("X")
        for name, raw in HOSTILE.items():
            response = await client.get(path + quote(raw, safe=""), headers=headers)
            number = oracle_number(raw, today())
            if number in REGISTRY:
                assert response.status_code == 200, (name, response.text)
                assert response.json()["cert_no"] == number
            else:
                assert_problem_document(response, name)
                # A %2F is a "/" to the router: no such path at all, also a 404.
                code = "NOT_FOUND" if number or "/" in raw else "MALFORMED"
                assert response.json()["code"] == code, name

    async def test_hostile_job_and_listing_ids(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        """No job or watched listing has such an id (a NUL included, which no row can hold)."""
        routes = {
            "get_recheck_job": "JOB_NOT_FOUND",
            "get_recheck_results": "JOB_NOT_FOUND",
            "get_watched_listing": "LISTING_NOT_WATCHED",
        }
        for raw in HOSTILE.values():
            if "/" in raw:
                continue  # another path, not this one's parameter
            for route, code in routes.items():
                param = "listing_id" if "listing" in route else "job_id"
                path = app.url_path_for(route, **{param: quote(raw, safe="")})
                for method in ("GET", "DELETE") if "results" not in route else ("GET",):
                    response = await client.request(method, path, headers=headers)
                    assert_problem(response, 404, code)

    async def test_hostile_changes_cursor(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        url = app.url_path_for("list_changes")
        for name, raw in HOSTILE.items():
            for params in ({"since": raw}, {"limit": raw}):
                response = await client.get(url, params=params, headers=headers)
                if response.status_code != 200:
                    assert_problem_document(response, name)


def _lines(raw: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in raw)


# Lines no parser can take: each must come back as a MALFORMED line, never fail the job.
UNREADABLE = [
    b'{"cert_no": "2024\x000109", "listing_id": "raw-nul"}',
    b"\x00\x00\x00",
    b'{"cert_no": "\\ud800", "listing_id": "lone-surrogate"}',
    b'{"cert_no": "x", "cert_no": "%s"}' % VALID.encode(),
    b'{"cert_no": "\xff\xfe"}',
    '{"model": "型号"}'.encode("gb18030"),
    b"[" * 1_000 + b"]" * 1_000,
    b'{"cert_no": ' + b"1" * 5_000 + b"}",
    b"=cmd|' /C calc'!A0",
]


def _unstorable(item: dict[str, Any]) -> bool:
    return any(
        "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value)
        for value in item.values()
        if isinstance(value, str)
    )


@pytest.mark.usefixtures("loaded")
class TestRecheckUploads:
    async def test_ndjson(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        readable = items()
        body = _lines(
            [json.dumps(i, ensure_ascii=n % 2 == 0).encode() for n, i in enumerate(readable)]
        )
        job, got = await run_job(client, app, headers, body + _lines(UNREADABLE))
        # A NUL or a lone surrogate cannot be stored: such a line is MALFORMED, not decided.
        unstorable = [i for i in readable if _unstorable(i)]
        assert job["invalid_lines"] == len(UNREADABLE) + len(unstorable)
        for item, answer in zip(readable, got, strict=False):
            if _unstorable(item):
                assert answer["reason"] == "MALFORMED", (item, answer)
            else:
                assert_decided(item, answer)
        assert [a["reason"] for a in got[len(readable) :]] == ["MALFORMED"] * len(UNREADABLE)

    async def test_deep_nesting_in_a_line(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        deep = b'{"cert_no": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
        _, got = await run_job(
            client, app, headers, _lines([deep, b'{"cert_no": "%s"}' % VALID.encode()])
        )
        assert [a["reason"] for a in got] == ["MALFORMED", "VALID"]

    async def test_csv_with_bom_and_hostile_cells(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        readable = [i for i in items() if not _unstorable(i)]
        nul = [{"cert_no": VALID, "listing_id": "nul-cell", "model": "a\x00b"}]
        rows = [",".join(FIELDS)] + [
            ",".join('"{}"'.format(str(i.get(f, "")).replace('"', '""')) for f in FIELDS)
            for i in readable + nul
        ]
        body = "\ufeff" + "\r\n".join(rows) + "\r\n"
        job, got = await run_job(client, app, headers, body.encode(), media="text/csv")
        assert job["status"] == "done"
        assert len(got) == len(readable) + 1
        for item, answer in zip(readable, got, strict=False):
            item = {k: v for k, v in item.items() if v != ""}
            assert_decided(item, answer)
        assert got[-1]["reason"] == "MALFORMED"  # a NUL cannot be stored

    @pytest.mark.parametrize(
        ("body", "media", "encoding"),
        [
            pytest.param(
                b"cert_no,cert_no\r\n%s,x\r\n" % VALID.encode(),
                "text/csv",
                None,
                id="csv-duplicate-header",
            ),
            pytest.param(
                "cert_no,model\r\n%s,型号\r\n".replace("%s", VALID).encode("gb18030"),
                "text/csv",
                None,
                id="csv-gb18030",
            ),
            pytest.param(
                b"cert_no\r\n" + VALID.encode() + b"\x00\r\n", "text/csv", None, id="csv-nul"
            ),
            pytest.param(
                gzip.compress(_lines([b'{"cert_no": "%s"}' % VALID.encode()] * 50))[:-12],
                "application/x-ndjson",
                "gzip",
                id="truncated-gzip",
            ),
            pytest.param(b"\x1f\x8b\x08\x00garbage", "application/x-ndjson", "gzip", id="not-gzip"),
            pytest.param(
                _lines([b'\xef\xbb\xbf{"cert_no": "%s"}' % VALID.encode()]),
                "application/x-ndjson",
                None,
                id="ndjson-bom",
            ),
        ],
    )
    async def test_awkward_uploads(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        body: bytes,
        media: str,
        encoding: str | None,
    ) -> None:
        extra = {"Content-Encoding": encoding} if encoding else {}
        created = await submit(client, app, headers, body, media=media, **extra)
        if created.status_code != 202:
            assert_problem_document(created)
            return
        job = await finished(client, created.headers["location"], headers)
        assert job["status"] == "done", job
        for answer in await results(client, created.headers["location"], headers):
            if answer["decision"] == "allow":  # only a line that is exactly the valid number
                assert answer["cert_no"] == VALID
                assert answer.get("error") is None


AUTHORIZATIONS = [
    pytest.param(b"", 401, id="empty"),
    pytest.param(b"Bearer", 401, id="scheme-only"),
    pytest.param(b"Bearer ", 401, id="scheme-and-space"),
    pytest.param(b"Basic dXNlcjpwYXNz", 401, id="basic"),
    pytest.param(b"Bearer " + b"k" * 20_000, 401, id="oversized"),
    pytest.param("Bearer ключ".encode(), 401, id="non-ascii"),
    pytest.param(b"Bearer \xff\xfe", 401, id="not-utf8"),
    pytest.param(b"Bearer ' OR '1'='1", 401, id="sql"),
    pytest.param(b"Bearer {key} extra", 401, id="key-and-more"),
    pytest.param(b"bearer {key}", 200, id="lower-case-scheme"),
    pytest.param(b"BEARER {key}", 200, id="upper-case-scheme"),
]


@pytest.mark.usefixtures("loaded")
class TestAuthorization:
    @pytest.mark.parametrize(("value", "status"), AUTHORIZATIONS)
    async def test_header(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        value: bytes,
        status: int,
    ) -> None:
        key = headers["Authorization"].removeprefix("Bearer ").encode()
        sent = {
            b"Authorization": value.replace(b"{key}", key),
            b"Content-Type": b"application/json",
        }
        response = await client.post(app.url_path_for("verify_one"), content=b"{}", headers=sent)
        assert response.status_code == status, response.text[:300]
        if status != 200:
            assert_problem_document(response)


@pytest.mark.usefixtures("loaded")
class TestRegistryImport:
    async def test_hostile_snapshot(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        header = "cert_no,status,holder,models"
        rows = (
            [f"{VALID},valid,Example,XK-200"]
            + [
                f'"{value.replace(chr(34), chr(34) * 2)}",valid,"=cmd|\' /C calc\'!A0",x'
                for value in HOSTILE.values()
            ]
            + ["2024010901234570,valid,a\x00b,x", "2024010901234571,有效\x00,b,x"]
        )
        body = ("\ufeff" + "\r\n".join([header, *rows]) + "\r\n").encode()
        url = app.url_path_for("import_registry")
        response = await client.post(
            url, content=body, headers={**headers, "Content-Type": "text/csv"}
        )
        if response.status_code != 200:
            assert_problem_document(response)
        verify = app.url_path_for("verify_one")
        for raw in [*HOSTILE.values(), "2024010901234570", "2024010901234571"]:
            answer = await client.post(verify, json={"cert_no": raw}, headers=headers)
            if "\x00" in raw:  # refused before any look-up (TestVerify)
                assert_problem(answer, 422, "VALIDATION_FAILED")
                continue
            assert answer.status_code == 200, answer.text
            if answer.json()["decision"] == "allow":
                # A NUL in a holder may or may not be a row error; a NUL in a status must be.
                assert oracle_number(raw, today()) in (VALID, "2024010901234570"), raw
