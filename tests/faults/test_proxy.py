"""The fault proxy itself, against a loopback echo server: each mode does what it says."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.proxy import FaultProxy, fault_proxy

pytestmark = [pytest.mark.faults, pytest.mark.timeout(30)]


@pytest.fixture
def echo() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets it in some tests
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.fixture
def proxy(echo: int) -> Iterator[FaultProxy]:
    with fault_proxy(echo) as running:
        yield running


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    sock.settimeout(1)
    return sock


def roundtrip(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


class TestModes:
    def test_pass(self, proxy: FaultProxy) -> None:
        with connect(proxy) as sock:
            assert roundtrip(sock) == b"ping"

    def test_delay_applies_to_an_open_connection(self, proxy: FaultProxy) -> None:
        with connect(proxy) as sock:
            assert roundtrip(sock) == b"ping"
            proxy.delay(300)
            started = time.monotonic()
            assert roundtrip(sock) == b"ping"
            assert time.monotonic() - started >= 0.55  # there and back, 300 ms each way

    def test_blackhole_holds_then_lets_go(self, proxy: FaultProxy) -> None:
        with connect(proxy) as sock:
            assert roundtrip(sock) == b"ping"
            proxy.blackhole()
            sock.sendall(b"held")
            with pytest.raises(TimeoutError):
                sock.recv(10)
            proxy.passthrough()
            assert sock.recv(10) == b"held"
        proxy.blackhole()
        with connect(proxy) as fresh:  # accepted, but nothing comes back
            fresh.sendall(b"x")
            with pytest.raises(TimeoutError):
                fresh.recv(10)

    def test_reset_cuts_open_and_new_connections(self, proxy: FaultProxy) -> None:
        with connect(proxy) as sock:
            assert roundtrip(sock) == b"ping"
            proxy.reset()
            time.sleep(0.1)
            with pytest.raises(ConnectionResetError):
                roundtrip(sock)
        # The reset may come before connect() has returned: that counts too.
        with pytest.raises(ConnectionResetError), connect(proxy) as fresh:
            roundtrip(fresh)
        proxy.passthrough()
        with connect(proxy) as again:
            assert roundtrip(again) == b"ping"

    def test_close_after_n_bytes(self, proxy: FaultProxy) -> None:
        proxy.close_after(10)
        with connect(proxy) as sock:
            # 6 bytes there and 4 of the 6 back make 10: the answer is cut short.
            assert roundtrip(sock, b"abcdef") == b"abcd"
