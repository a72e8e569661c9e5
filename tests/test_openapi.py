"""openapi.yaml at the top of the repository is exactly what the service serves."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.yaml"


async def test_served_document_matches_the_file(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    on_disk = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    assert served == on_disk, "openapi.yaml is out of date: run `certcheck openapi > openapi.yaml`"


async def test_contract_paths_are_all_there(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        "/v1/verify",
        "/v1/verify/batch",
        "/v1/certificates/{cert_no}",
        "/v1/registry",
        "/v1/changes",
        "/v1/admin/registry/import",
        "/v1/admin/registry/sync",
        "/healthz",
        "/readyz",
    } <= paths.keys()
