"""`/docs` and `/redoc` work offline: every asset they load is served by the app itself."""

from __future__ import annotations

import re

import httpx
import pytest

_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class TestDocsPages:
    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    async def test_load_only_local_assets_that_answer(
        self, client: httpx.AsyncClient, page: str
    ) -> None:
        response = await client.get(page)
        assert response.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
        assert urls
        assert not [u for u in urls if not u.startswith("/") or u.startswith("//")]
        for url in urls:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            suffix = url[url.rindex(".") :]
            assert _TYPES[suffix] in asset.headers["content-type"], url
            assert len(asset.content) > 100

    async def test_swagger_ui_renders_openapi_3_1(self, client: httpx.AsyncClient) -> None:
        # Swagger UI 4 shows "Unable to render this definition" for 3.1, FastAPI's version.
        assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.1")
        bundle = await client.get("/docs-assets/swagger-ui-bundle.js")
        assert "isOAS31" in bundle.text  # Swagger UI 5's test for a 3.1 document

    async def test_are_not_in_the_openapi_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
