"""The public lookup pages over HTTP on both databases: what a shopper sees, what is refused."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from certcheck.app import create_app
from certcheck.config import Settings
from certcheck.verification.numbers import NUMBER_FORMAT_HINT
from certcheck.verification.records import Status
from tests.conftest import load, today
from tests.factories import cert

VALID = "2024010901234567"
REVOKED = "2023010901000002"
LAPSED = "2020010901000005"  # status valid, but past its expiry date
UNKNOWN = "2024010901999999"
HOSTILE = "<script>alert('x')</script> \"Evil\" & Co"


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(
        engine,
        [
            cert(VALID, expires_on=today() + timedelta(days=400), models=("XK-200", "XK-200S")),
            cert(REVOKED, status=Status.REVOKED, status_reason="产品抽查不合格"),
            cert(LAPSED, expires_on=today() - timedelta(days=1)),
            cert("2024010901000666", holder=HOSTILE, models=("<b>M1</b>",)),
        ],
    )
    assert (await client.get("/readyz")).status_code == 200


def status_block(page: str) -> str:
    match = re.search(r'<div id="status".*?</div>|<p id="status".*?</p>', page, re.S)
    assert match, page
    return match[0]


@pytest.mark.usefixtures("loaded")
class TestCertificatePage:
    async def test_in_force_certificate_in_both_languages(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"/lookup/{VALID}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        page = response.text
        status = status_block(page)
        assert 'data-in-force="yes"' in status
        assert "该证书有效" in status
        assert "This certificate is in force." in status
        for shown in (VALID, "Example Electronics Co., Ltd.", "XK-200S", "0901"):
            assert shown in page
        assert "microcomputers" in page  # the catalogue's name for product code 0901
        assert "登记数据截至" in page
        assert "Registry data as of" in page

    @pytest.mark.parametrize(
        ("number", "zh", "en"),
        [
            pytest.param(REVOKED, "证书已被撤销", "has been revoked", id="revoked"),
            pytest.param(LAPSED, "证书已过有效期", "has expired", id="past-expiry-date"),
        ],
    )
    async def test_not_in_force_says_why(
        self, client: httpx.AsyncClient, number: str, zh: str, en: str
    ) -> None:
        response = await client.get(f"/lookup/{number}")
        assert response.status_code == 200
        status = status_block(response.text)
        assert 'data-in-force="no"' in status
        assert "该证书无效" in status
        assert "This certificate is not in force." in status
        assert zh in status
        assert en in status

    async def test_the_number_is_normalised_as_the_api_does(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/lookup/CCC\uff1a 2024-0109-0123 4567")
        assert response.status_code == 200
        assert f'<dd id="cert-no">{VALID}</dd>' in response.text

    async def test_unknown_number_is_a_404_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"/lookup/{UNKNOWN}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert f"登记数据中没有编号为 {UNKNOWN} 的证书" in response.text
        assert f"No certificate numbered {UNKNOWN} is in the registry." in response.text

    async def test_malformed_number_is_a_422_page_saying_why(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/lookup/2024O10901234567")
        assert response.status_code == 422
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "这不是 CCC 证书编号" in response.text
        assert "This is not a CCC certificate number." in response.text
        assert NUMBER_FORMAT_HINT in response.text
        assert 'value="2024O10901234567"' in response.text  # kept in the form to correct


@pytest.mark.usefixtures("loaded")
class TestForm:
    async def test_the_form_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/lookup")
        assert response.status_code == 200
        page = response.text
        assert '<form method="get" action="/lookup"' in page
        assert 'name="cert_no"' in page
        assert (await client.get("/lookup/")).text == page
        assert "证书编号" in page
        assert "Certificate number" in page
        assert "<script" not in page

    async def test_submitting_redirects_to_the_normalised_number(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/lookup", params={"cert_no": " ccc:2024-0109-0123-4567 "})
        assert response.status_code == 303
        assert response.headers["location"] == f"/lookup/{VALID}"
        followed = await client.get("/lookup", params={"cert_no": VALID}, follow_redirects=True)
        assert followed.status_code == 200
        assert str(followed.url).endswith(f"/lookup/{VALID}")
        assert 'data-in-force="yes"' in followed.text

    @pytest.mark.parametrize(
        ("typed", "message"),
        [
            pytest.param("12345", "This is not a CCC certificate number.", id="malformed"),
            pytest.param("   ", "Please type a certificate number.", id="blank"),
        ],
    )
    async def test_a_number_that_cannot_be_is_a_422_page(
        self, client: httpx.AsyncClient, typed: str, message: str
    ) -> None:
        response = await client.get("/lookup", params={"cert_no": typed})
        assert response.status_code == 422
        assert message in response.text
        assert "location" not in response.headers


@pytest.mark.usefixtures("loaded")
class TestEscaping:
    async def test_registry_text_is_escaped(self, client: httpx.AsyncClient) -> None:
        page = (await client.get("/lookup/2024010901000666")).text
        assert "<script>" not in page
        assert "<b>M1</b>" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &#34;Evil&#34; &amp; Co" in page
        assert "&lt;b&gt;M1&lt;/b&gt;" in page

    @pytest.mark.parametrize("via", ["query", "path"])
    async def test_typed_input_is_escaped(self, client: httpx.AsyncClient, via: str) -> None:
        typed = '"><script>alert(1)</script><input value="'
        if via == "query":
            response = await client.get("/lookup", params={"cert_no": typed})
        else:
            response = await client.get("/lookup/" + quote(typed, safe=""))
        assert response.status_code == 422
        assert "<script>" not in response.text
        escaped = "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;input value=&#34;"
        assert f'value="{escaped}"' in response.text


@pytest.mark.usefixtures("loaded")
class TestHeaders:
    @pytest.mark.parametrize("path", ["/lookup", f"/lookup/{VALID}", f"/lookup/{UNKNOWN}"])
    async def test_security_headers(self, client: httpx.AsyncClient, path: str) -> None:
        headers = (await client.get(path)).headers
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "form-action 'self'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"

    async def test_the_inline_style_is_the_one_the_policy_allows(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/lookup")
        style = re.search(r"<style>(.*?)</style>", response.text, re.S)
        assert style
        digest = base64.b64encode(hashlib.sha256(style[1].encode()).digest()).decode()
        assert f"style-src 'sha256-{digest}'" in response.headers["content-security-policy"]

    async def test_pages_are_not_in_the_api_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [path for path in paths if path.startswith("/lookup")]


async def test_no_registry_is_a_503_page_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/lookup/{VALID}")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "证书登记数据暂时无法查询" in response.text
    assert "The certificate registry cannot be consulted right now" in response.text


def client_at(app: ASGIApp, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://certcheck.test")


@pytest.fixture
async def limited_app(database_url: str) -> AsyncIterator[ASGIApp]:
    """An app that allows two lookup pages a minute per client address."""
    settings = Settings(database_url=database_url, lookup_rate_limit="2/minute")
    async with LifespanManager(create_app(settings)) as manager:
        yield manager.app


async def test_each_address_is_rate_limited(limited_app: ASGIApp) -> None:
    limited = client_at(limited_app, "198.51.100.7")
    for _ in range(2):
        assert (await limited.get("/lookup")).status_code == 200
    refused = await limited.get(f"/lookup/{VALID}")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "text/html; charset=utf-8"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "查询过于频繁" in refused.text
    assert "Too many lookups from your address" in refused.text
    assert "default-src 'none'" in refused.headers["content-security-policy"]
    assert (await client_at(limited_app, "203.0.113.9").get("/lookup")).status_code == 200
