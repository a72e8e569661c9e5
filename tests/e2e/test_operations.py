"""What an ops team relies on, checked against a real served process."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.e2e.servers import Server, cli, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CERTCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A migrated database with a registry and a key, made once (four commands take seconds);
    each test serves a copy of it."""
    database = tmp_path_factory.mktemp("prepared") / "ops.db"
    full = {**os.environ, "CERTCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    assert cli(full, "db", "upgrade").returncode == 0
    snapshot = database.with_name("registry.csv")
    assert cli(full, "demo-registry", str(snapshot), "--count", "100").returncode == 0
    assert cli(full, "import", str(snapshot)).returncode == 0
    created = cli(full, "keys", "create", "--platform", "ops-shop", "--scope", "verify")
    return database, created.stdout.strip()


@pytest.fixture
def key(prepared: tuple[Path, str], tmp_path: Path) -> str:
    shutil.copy(prepared[0], tmp_path / "ops.db")  # where `env` points
    return prepared[1]


@pytest.fixture
def server(env: dict[str, str], key: str, tmp_path: Path) -> Iterator[Server]:
    with running_server({**env, "CERTCHECK_SHUTDOWN_DRAIN": "1.5"}, tmp_path) as process:
        yield process


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if IN_CI:
            pytest.fail("promtool is missing (Debian package prometheus; .ci/run installs it)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return path


def series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


def verify(server: Server, key: str, cert_no: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/verify",
        json={"cert_no": cert_no},
        headers={"Authorization": f"Bearer {key}", **headers},
    )


class TestMetrics:
    def test_valid_exposition_with_bounded_series(self, server: Server, key: str) -> None:
        for i in range(20):
            verify(server, key, f"2024010901{i:06d}")
            verify(server, key, f"garbage-{i}")
        httpx.get(f"{server.base}/metrics")  # so /metrics itself is among the series
        first = httpx.get(f"{server.base}/metrics")
        assert first.headers["content-type"].startswith("text/plain")
        checked = subprocess.run(
            [promtool(), "check", "metrics"],
            input=first.text,
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        for name in (
            "certcheck_http_request_duration_seconds_bucket",
            'certcheck_decisions_total{decision="block",reason="NOT_FOUND"}',
            'certcheck_registry_cache_lookups_total{result="miss"}',
            'certcheck_registry_certificates{status="valid"}',
            "certcheck_registry_age_seconds",
            'le="0.1"',
        ):
            assert name in first.text, name
        assert key not in first.text
        assert "2024010901" not in first.text

        for i in range(20, 60):
            verify(server, key, f"2024010901{i:06d}")
            verify(server, key, f"garbage-{i}")
        second = httpx.get(f"{server.base}/metrics").text
        assert series(second) == series(first.text)


class TestRequestLog:
    def test_request_id_echoed_or_made(self, server: Server, key: str) -> None:
        given = verify(server, key, "2024010901000001", **{"X-Request-ID": "abc-123"})
        assert given.headers["x-request-id"] == "abc-123"
        made = verify(server, key, "2024010901000001", **{"X-Request-ID": "bad id;drop"})
        assert made.headers["x-request-id"] != "bad id;drop"
        assert len(made.headers["x-request-id"]) == 26

    def test_one_json_line_per_request_without_secrets(self, server: Server, key: str) -> None:
        verify(server, key, "2024010901000001", **{"X-Request-ID": "log-test-1"})
        deadline = time.monotonic() + 30
        line = None
        while line is None and time.monotonic() < deadline:
            lines = [json.loads(x) for x in server.output().splitlines() if x.startswith("{")]
            line = next((x for x in lines if x.get("request_id") == "log-test-1"), None)
            time.sleep(0.05)
        assert line is not None, server.output()
        assert line["method"] == "POST"
        assert line["route"] == "/v1/verify"
        assert line["status"] == 200
        assert line["platform"] == "ops-shop"
        assert line["decision"] in {"allow", "block", "review"}
        assert line["duration_ms"] >= 0
        assert key.split("_")[2] not in server.output()


class TestGracefulShutdown:
    @pytest.fixture
    def server(self, env: dict[str, str], key: str, tmp_path: Path) -> Iterator[Server]:
        # A drain long enough to see it and still be served on a loaded machine.
        with running_server({**env, "CERTCHECK_SHUTDOWN_DRAIN": "10"}, tmp_path) as process:
            yield process

    def test_sigterm_fails_readiness_first_and_finishes_in_flight(
        self, server: Server, key: str
    ) -> None:
        assert httpx.get(f"{server.base}/readyz").status_code == 200
        server.process.terminate()
        deadline = time.monotonic() + 5  # the signal is handled at once; 5 s is half the drain
        while (draining := httpx.get(f"{server.base}/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "readiness still on after SIGTERM"
            time.sleep(0.05)
        assert draining.status_code == 503
        assert draining.json()["checks"]["process"] == "shutting down"
        # Still answering during the drain: balancers may not have noticed yet.
        assert verify(server, key, "2024010901000001").status_code == 200
        # Uvicorn re-raises the signal after a clean shutdown, so the exit status names SIGTERM.
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.output()


class TestDrainUnderLoad:
    def test_keep_alive_clients_see_answers_or_clean_closes_never_resets(
        self, server: Server, key: str
    ) -> None:
        outcomes: list[str] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=server.base, timeout=30) as http:
                while not stop.is_set():
                    outcomes.append(_outcome(http, key))
                    if outcomes[-1] in ("ok-closed", "refused"):
                        return  # told to go, or the listener is gone: on to another replica

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while outcomes.count("ok") < 16:  # every client has a kept-alive connection going
            assert time.monotonic() < deadline, outcomes
            time.sleep(0.05)
        server.process.terminate()
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        failures = [o for o in outcomes if o not in ("ok", "ok-closed", "refused")]
        assert not failures, collections.Counter(outcomes)
        assert "ok-closed" in outcomes  # answers during the drain told clients to move on


def _outcome(http: httpx.Client, key: str) -> str:
    """ok, ok-closed (answered with Connection: close), refused (never sent), or the error."""
    try:
        response = http.post(
            "/v1/verify", json={"cert_no": "garbage"}, headers={"Authorization": f"Bearer {key}"}
        )
    except httpx.ConnectError:
        return "refused"
    except httpx.TransportError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return f"status {response.status_code}"
    return "ok-closed" if response.headers.get("connection") == "close" else "ok"


class TestWorkers:
    def test_metrics_add_up_across_worker_processes(
        self, env: dict[str, str], key: str, tmp_path: Path
    ) -> None:
        with running_server(env, tmp_path, "--workers", "2") as server:
            results: list[int] = []

            def hit() -> None:
                for _ in range(15):
                    results.append(verify(server, key, "garbage").status_code)

            threads = [threading.Thread(target=hit) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert results == [200] * 60
            text = httpx.get(f"{server.base}/metrics").text
        line = next(
            x
            for x in text.splitlines()
            if x.startswith('certcheck_decisions_total{decision="block",reason="MALFORMED"}')
        )
        assert float(line.rsplit(" ", 1)[1]) == 60
