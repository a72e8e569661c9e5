"""End to end: `certcheck serve` as a real process, driven by the real CLI and real HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from certcheck.verification.numbers import today_in_shanghai
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
        created = cli(env, "keys", "create", "--platform", "shop", "--scope", "verify")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert key.startswith("cc_")
        assert "\n" not in key

        imported = cli(env, "import", str(snapshot))
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.startswith("added 2000, changed 0, removed 0")

        # Another process imported: the server notices at its next poll of the registry state
        # (api.md: within 2 s, held by CERTCHECK_GENERATION_POLL_INTERVAL <= 2 and the store's
        # own tests). Here only that it notices: a loaded machine may be slow to answer.
        headers = {"Authorization": f"Bearer {key}"}
        # The demo registry's numbers follow the service's calendar (Asia/Shanghai), not UTC.
        year = today_in_shanghai(datetime.now(UTC)).year
        body = {"cert_no": f"{year - 1}010901234567", "model": "XK-200"}
        deadline = time.monotonic() + 60
        while (
            response := httpx.post(f"{server}/v1/verify", json=body, headers=headers)
        ).status_code != 200:
            assert time.monotonic() < deadline, response.text
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
