"""Signed receipts: compact JWS any JOSE library verifies with the published key set."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.evidence import receipts
from certcheck.evidence.signing import SigningKeys
from tests.conftest import load
from tests.evidence.helpers import changed_at, fails_with_joserfc, record, verify_with_joserfc
from tests.factories import cert

VALID = "2024010901234567"
TOP = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, max_registry_age=3600, check_flush_seconds=0.1)


@pytest.fixture
async def check_id(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, headers: dict[str, str]
) -> str:
    await load(engine, [cert(VALID)])
    await client.get("/readyz")
    body = {"cert_no": VALID, "listing_id": "sku-1", "manufacturer": "示例电子有限公司"}
    answer = await client.post(app.url_path_for("verify_one"), json=body, headers=headers)
    check_id: str = answer.json()["check_id"]
    await record(client, check_id, headers)
    return check_id


async def receipt(client: httpx.AsyncClient, check_id: str, headers: dict[str, str]) -> str:
    response = await client.get(f"/v1/checks/{check_id}/receipt", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jose"
    return response.text


async def key_set(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/.well-known/jwks.json")  # no key
    assert response.status_code == 200, response.text
    jwks: dict[str, Any] = response.json()
    return jwks


class TestReceipts:
    async def test_verifies_with_the_key_set_and_carries_the_record(
        self, client: httpx.AsyncClient, check_id: str, headers: dict[str, str]
    ) -> None:
        token = await receipt(client, check_id, headers)
        jwks = await key_set(client)

        protected, payload = verify_with_joserfc(token, jwks)

        (key,) = jwks["keys"]
        assert protected == {"alg": "EdDSA", "kid": key["kid"], "typ": "certcheck-receipt"}
        assert payload == (await client.get(f"/v1/checks/{check_id}", headers=headers)).json()
        assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}  # no private part
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == (
            "OKP",
            "Ed25519",
            "sig",
            "EdDSA",
        )
        assert "=" not in token
        assert token.count(".") == 2
        assert receipts.verify(token, jwks).record == payload  # PyJWT agrees

    async def test_any_changed_byte_fails(
        self, client: httpx.AsyncClient, check_id: str, headers: dict[str, str]
    ) -> None:
        token = await receipt(client, check_id, headers)
        jwks = await key_set(client)

        passing = [
            at for at in range(len(token)) if not fails_with_joserfc(changed_at(token, at), jwks)
        ]

        assert passing == []

    async def test_old_receipts_verify_after_a_rotation(
        self,
        client: httpx.AsyncClient,
        check_id: str,
        headers: dict[str, str],
        engine: AsyncEngine,
    ) -> None:
        before = await receipt(client, check_id, headers)
        old_kid = _header_kid(before)

        new_kid = await SigningKeys(engine, retention_days=400).rotate()
        deadline = time.monotonic() + 10  # the contract's bound on every worker
        after = before
        while _header_kid(after) != new_kid:
            assert time.monotonic() < deadline, "still signing with the old key after 10 s"
            await asyncio.sleep(0.2)
            after = await receipt(client, check_id, headers)

        jwks = await key_set(client)
        assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
        assert verify_with_joserfc(before, jwks)[1] == verify_with_joserfc(after, jwks)[1]

    async def test_the_command_verifies_offline(
        self, client: httpx.AsyncClient, check_id: str, headers: dict[str, str], tmp_path: Path
    ) -> None:
        token = await receipt(client, check_id, headers)
        (tmp_path / "jwks.json").write_text(json.dumps(await key_set(client)))
        (tmp_path / "good.jws").write_text(token)
        (tmp_path / "bad.jws").write_text(changed_at(token, len(token) // 2))

        good = await asyncio.to_thread(verify_command, tmp_path, "good.jws")
        bad = await asyncio.to_thread(verify_command, tmp_path, "bad.jws")

        assert good.returncode == 0, good.stderr
        assert check_id in good.stdout
        assert bad.returncode == 1
        (line,) = bad.stderr.strip().splitlines()
        assert line.startswith("certcheck: bad.jws: invalid receipt:")


def _header_kid(token: str) -> str:
    header: dict[str, str] = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return header["kid"]


def verify_command(cwd: Path, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "certcheck", "receipt", "verify", name, "--jwks", "jwks.json"],
        cwd=cwd,
        env={"PYTHONPATH": str(TOP / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
