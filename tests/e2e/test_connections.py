"""Slow and oversized clients against a real server: cut off in time, others unaffected."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.servers import Server, cli, running_server

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


# One server for the module: no test here stops it or reads what another left behind, and
# each start costs seconds (two commands and a process).
@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("connections")


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    return {
        "CERTCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'conn.db'}",
        "CERTCHECK_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "CERTCHECK_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "CERTCHECK_BODY_MIN_RATE": "1000",
    }


@pytest.fixture(scope="module")
def key(env: dict[str, str]) -> str:
    full = {**os.environ, **env}
    assert cli(full, "db", "upgrade").returncode == 0
    created = cli(full, "keys", "create", "--platform", "slow-shop", "--scope", "verify")
    return created.stdout.strip()


@pytest.fixture(scope="module")
def server(env: dict[str, str], key: str, workdir: Path) -> Iterator[Server]:
    with running_server(env, workdir) as process:
        yield process


def connect(server: Server) -> socket.socket:
    parts = urlsplit(server.base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    return sock


def trickle_until_closed(sock: socket.socket, piece: bytes, limit: float) -> tuple[float, bytes]:
    """Send `piece` every 0.2 s until the server answers or closes; (seconds, what it sent)."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            answer = sock.recv(65_536)
        except TimeoutError:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started, b""
            continue
        except ConnectionResetError:
            return time.monotonic() - started, b""
        return time.monotonic() - started, answer
    raise AssertionError(f"still open after {limit} s")


class TestHeaderDeadline:
    def test_trickled_headers_are_cut_off_while_others_are_served(self, server: Server) -> None:
        with connect(server) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\n")
            # Meanwhile an ordinary client is served at once.
            assert httpx.get(f"{server.base}/healthz").status_code == 200
            seconds, answer = trickle_until_closed(slow, b"X", limit=HEADER_TIMEOUT + 10)
        assert seconds < HEADER_TIMEOUT + 3
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"REQUEST_TIMEOUT" in answer

    def test_a_silent_connection_is_closed(self, server: Server) -> None:
        with connect(server) as silent:
            silent.settimeout(HEADER_TIMEOUT + 10)
            started = time.monotonic()
            answer = silent.recv(65_536)
            assert time.monotonic() - started < HEADER_TIMEOUT + 3
        assert answer.startswith(b"HTTP/1.1 408 ")

    def test_a_kept_alive_connection_trickling_its_next_request_is_cut_off(
        self, server: Server
    ) -> None:
        # The deadline is armed once a read leaves a request unfinished, not at every request.
        with connect(server) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            first = b""
            while b"\r\n\r\n" not in first or not first.endswith(b"}"):
                first += slow.recv(65_536)  # the head and the JSON body may come apart
            assert first.startswith(b"HTTP/1.1 200 "), first
            slow.sendall(b"GET /healthz HTTP/1.1\r\n")
            seconds, answer = trickle_until_closed(slow, b"X", limit=HEADER_TIMEOUT + 10)
        assert seconds < HEADER_TIMEOUT + 3
        assert answer.startswith(b"HTTP/1.1 408 "), answer

    def test_keep_alive_requests_each_get_the_full_deadline(self, server: Server) -> None:
        with httpx.Client(base_url=server.base) as client:
            for _ in range(3):
                assert client.get("/healthz").status_code == 200
                time.sleep(HEADER_TIMEOUT / 2)  # under the keep-alive timeout (5 s)


class TestBodyDeadline:
    def test_a_body_sent_too_slowly_is_cut_off(self, server: Server, key: str) -> None:
        with connect(server) as slow:
            slow.sendall(
                b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 60000\r\n\r\n{"
            )
            seconds, answer = trickle_until_closed(slow, b" " * 10, limit=BODY_TIMEOUT + 20)
        assert seconds < BODY_TIMEOUT + 5
        assert answer.startswith(b"HTTP/1.1 408 ") or answer == b"", answer
        assert httpx.get(f"{server.base}/healthz").status_code == 200


class TestHeaderSize:
    @pytest.mark.parametrize("pieces", [1, 8])
    def test_oversized_headers_get_431(self, server: Server, pieces: int) -> None:
        filler = b"a" * (40 << 10)
        request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: " + filler + b"\r\n\r\n"
        with connect(server) as sock:
            step = len(request) // pieces + 1
            for start in range(0, len(request), step):
                sock.sendall(request[start : start + step])
                time.sleep(0.05)
            answer = sock.recv(65_536)
        assert answer.startswith(b"HTTP/1.1 431 "), answer
        assert b"HEADERS_TOO_LARGE" in answer
        assert httpx.get(f"{server.base}/healthz").status_code == 200
