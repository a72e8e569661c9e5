"""Closing the listener on shutdown without resetting the connections queued on it."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from certcheck import listening
from certcheck.serving import QuiescingServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="socket filters are Linux's")

REQUEST = b"GET /ok HTTP/1.1\r\nhost: test\r\n\r\n"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    with sock:
        yield sock


def connect(sock: socket.socket, timeout: float = 5) -> socket.socket:
    return socket.create_connection(sock.getsockname()[:2], timeout=timeout)


class TestStopNewConnections:
    def test_new_clients_are_not_connected_but_queued_ones_are_kept(
        self, listener: socket.socket
    ) -> None:
        queued = connect(listener)
        queued.sendall(b"first")
        assert listening.queued_connections(listener) == 1

        assert listening.stop_new_connections(listener)
        with pytest.raises(TimeoutError):  # its SYN is dropped: no handshake, no queue
            connect(listener, timeout=0.3)

        assert listening.queued_connections(listener) == 1
        accepted, _ = listener.accept()
        with accepted, queued:
            assert accepted.recv(16) == b"first"
            accepted.sendall(b"answer")
            assert queued.recv(16) == b"answer"
        assert listening.queued_connections(listener) == 0

    def test_once_closed_a_client_is_refused(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        address = sock.getsockname()[:2]
        assert listening.stop_new_connections(sock)
        sock.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=5)


class TestQuiesce:
    def test_returns_once_the_server_has_accepted_every_queued_connection(
        self, listener: socket.socket
    ) -> None:
        served: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            served.append(await reader.readexactly(4))
            writer.close()

        async def scenario() -> int | None:
            server = await asyncio.start_server(handle, sock=listener)
            # Connected while the loop is busy here: the kernel queues them, nobody accepts.
            clients = [connect(listener) for _ in range(5)]
            for client in clients:
                client.sendall(b"ping")
            assert listening.queued_connections(listener) == 5
            await listening.quiesce([listener])
            left = listening.queued_connections(listener)
            server.close()
            for client in clients:
                client.close()
            return left

        assert asyncio.run(scenario()) == 0
        assert len(served) == 5

    def test_gives_up_after_its_bound_with_a_warning(
        self, listener: socket.socket, caplog: pytest.LogCaptureFixture
    ) -> None:
        with connect(listener):  # queued; nothing will ever accept it
            started = time.monotonic()
            with caplog.at_level(logging.WARNING, logger=listening.__name__):
                asyncio.run(listening.quiesce([listener], settle=0, bound=0.3))
            waited = time.monotonic() - started
        assert 0.3 <= waited < 2
        assert "1 connections not accepted" in caplog.text


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def late_client(server_class: type[uvicorn.Server]) -> bytes:
    """Serve `ok_app` and shut down with a client connected at the last moment, its request
    sent but not yet accepted by the server; what that client reads."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    late: list[socket.socket] = []

    class LateClient(server_class):  # type: ignore[misc,valid-type]
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # The loop is here, not accepting: the kernel completes the handshake and queues.
            client = connect(listener)
            client.sendall(REQUEST)
            late.append(client)
            await super().shutdown(sockets)

    config = uvicorn.Config(ok_app, lifespan="off", log_config=None, timeout_graceful_shutdown=5)
    server = LateClient(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        server.should_exit = True
        thread.join(timeout=20)
        assert late, "the server did not shut down"
        with late[0] as client:
            received = b""
            while chunk := client.recv(4096):
                received += chunk
            return received
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        listener.close()


class TestShutdown:
    def test_a_client_connected_just_before_the_listener_closes_is_answered(self) -> None:
        answer = late_client(QuiescingServer)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
        assert answer.endswith(b"\r\n\r\nok")

    def test_without_quiescing_it_would_be_reset(self) -> None:
        # What QuiescingServer prevents: the kernel resets every connection still queued.
        with pytest.raises(ConnectionResetError):
            late_client(uvicorn.Server)
