"""End to end: records readable within 2 s of the answer, and rotations reaching every worker."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from certcheck.evidence.signing import CACHE_SECONDS
from tests.e2e.servers import cli, running_server

pytestmark = pytest.mark.e2e

READABLE_WITHIN = 2.0  # the contract's bound (docs/evidence.md)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CERTCHECK_DATABASE_URL": database_url, "HOME": str(tmp_path)}


def kid_of(token: str) -> str:
    header: dict[str, str] = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return header["kid"]


def test_checks_are_readable_within_2_s_and_rotations_reach_every_worker(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert cli(env, "db", "upgrade").returncode == 0
    snapshot = tmp_path / "registry.jsonl"
    assert cli(env, "demo-registry", str(snapshot), "--count", "10").returncode == 0
    assert cli(env, "import", str(snapshot)).returncode == 0
    created = cli(env, "keys", "create", "--platform", "shop", "--scope", "verify")
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}

    with (
        running_server(env, tmp_path, "--workers", "2") as server,
        httpx.Client(base_url=server.base, headers=headers, timeout=5) as http,
    ):
        answered_at = {}
        for _ in range(10):  # new connections: both workers answer some
            answered = httpx.post(
                f"{server.base}/v1/verify", json={"cert_no": "garbage"}, headers=headers
            )
            assert answered.status_code == 200, answered.text
            answered_at[answered.json()["check_id"]] = time.monotonic()
        for check_id, at in answered_at.items():  # each measured from its own answer
            while (found := http.get(f"/v1/checks/{check_id}")).status_code != 200:
                assert found.status_code == 404, found.text
                assert time.monotonic() - at < READABLE_WITHIN, f"{check_id} not readable"
                time.sleep(0.02)
        ids = list(answered_at)

        # Every worker signs (and caches its current key) before the rotation.
        before = {
            kid_of(httpx.get(f"{server.base}/v1/checks/{i}/receipt", headers=headers).text)
            for i in ids
        }
        # Both workers loaded their key before this instant; each looks again within
        # CACHE_SECONDS of its load (stricter than the contract's 10 s).
        cached_before = time.monotonic()
        rotated = cli(env, "keys", "signing", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split()[1]
        assert new_kid not in before
        time.sleep(max(0.0, cached_before + CACHE_SECONDS + 0.5 - time.monotonic()))
        for check_id in ids:  # new connections again: every worker
            receipt = httpx.get(f"{server.base}/v1/checks/{check_id}/receipt", headers=headers)
            assert kid_of(receipt.text) == new_kid
