"""End to end: `certcheck serve` as a real process, driven by the real CLI and real HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import cli, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CERTCHECK_DATABASE_URL": database_url, "HOME": str(tmp_path)}


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with running_server(env, tmp_path) as process:
        yield process.base


class TestServeEndToEnd:
    def test_import_key_and_verify_over_http(
        self, server: str, env: dict[str, str], tmp_path: Path
    ) -> None:
        assert httpx.get(f"{server}/readyz").status_code == 503  # nothing loaded yet

        snapshot = tmp_path / "registry.csv.gz"
        written = cli(env, "demo-registry", str(snapshot), "--count", "2000")
        assert written.returncode == 0, written.stderr
        imported = cli(env, "import", str(snapshot))
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.startswith("added 2000, changed 0, removed 0")
        imported_at = time.monotonic()

        created = cli(env, "keys", "create", "--platform", "shop", "--scope", "verify")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert key.startswith("cc_")
        assert "\n" not in key

        # Another process imported: the server must notice within 2 seconds.
        headers = {"Authorization": f"Bearer {key}"}
        body = {"cert_no": f"{time.gmtime().tm_year - 1}010901234567", "model": "XK-200"}
        while True:
            response = httpx.post(f"{server}/v1/verify", json=body, headers=headers)
            if response.status_code == 200 or time.monotonic() - imported_at > 2:
                break
            time.sleep(0.05)
        assert response.status_code == 200, response.text
        assert response.json()["reason"] == "VALID"
        assert httpx.get(f"{server}/readyz").status_code == 200

        batch = httpx.post(f"{server}/v1/verify/batch", json={"items": [body]}, headers=headers)
        assert batch.status_code == 403  # the key has only the verify scope

    def test_cli_verify_and_revoke(self, env: dict[str, str], tmp_path: Path) -> None:
        assert cli(env, "db", "upgrade").returncode == 0
        snapshot = tmp_path / "registry.jsonl"
        assert cli(env, "demo-registry", str(snapshot), "--count", "10").returncode == 0
        assert cli(env, "import", str(snapshot)).returncode == 0
        checked = cli(env, "verify", "garbage")
        assert checked.returncode == 3, checked.stderr  # block
        assert '"reason": "MALFORMED"' in checked.stdout
        refused = cli(env, "keys", "revoke", "nosuchkey")
        assert refused.returncode == 1
        assert refused.stderr.startswith("certcheck: no active key")
        missing = cli(env, "import", str(tmp_path / "missing.csv"))
        assert missing.returncode == 1
        assert len(missing.stderr.strip().splitlines()) == 1
