"""A real webhook receiver for the tests: an HTTP (or HTTPS) server on loopback, in a thread of
its own, that answers each path as the test plans and records every request it got."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1  # a planned "status": answer nothing until the receiver stops


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered; HANG: nothing

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = 0
    host: str = "127.0.0.1"  # as the URL names it: "localhost" over TLS, the certificate's name
    scheme: str = "http"
    # Per path, the statuses to answer in turn; once used up, `then` (200 unless changed).
    plans: dict[str, list[int]] = field(default_factory=dict)
    then: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    pause: float = 0.0  # seconds every answer waits
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Over TLS: the server name each client asked for (SNI; None: it sent none), and the error
    # of each handshake that failed (the client refusing our certificate, say).
    server_names: list[str | None] = field(default_factory=list)
    handshake_errors: list[str] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def plan(self, path: str, statuses: list[int], then: int = 200) -> None:
        with self.lock:
            self.plans[path] = list(statuses)
            self.then[path] = then

    def got(self, path: str = "/hook") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def acknowledged(self, path: str = "/hook") -> list[str]:
        """The event ids answered with a 2xx, in the order they came."""
        return [r.event_id for r in self.got(path) if 200 <= r.status < 300]

    def _answer(self, path: str) -> int:
        with self.lock:
            planned = self.plans.get(path, [])
            return planned.pop(0) if planned else self.then.get(path, 200)

    def _record(self, received: Received) -> None:
        with self.lock:
            self.received.append(received)

    def _server_name(self, name: str | None) -> None:
        with self.lock:
            self.server_names.append(name)

    def _handshake_failed(self, error: OSError) -> None:
        with self.lock:
            self.handshake_errors.append(str(error))


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver._answer(self.path)
            receiver._record(Received(self.path, headers, body, status))
            receiver.stopping.wait(receiver.pause)
            if status == HANG:
                receiver.stopping.wait(30)
                return
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", receiver.url("/elsewhere"))
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests read `received`

    return Handler


class _TLSServer(ThreadingHTTPServer):
    """HTTPS on the address "localhost" resolves to first (the one the service connects to).
    Each connection's handshake runs in its own thread, not the accepting one, so a client that
    fails it (or is slow) holds up no other, and the failure is recorded rather than printed."""

    def __init__(self, receiver: Receiver, tls: ssl.SSLContext) -> None:
        family, *_, address = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0]
        self.address_family = family  # read by the constructor: ::1 needs an IPv6 socket
        self.receiver = receiver
        super().__init__((str(address[0]), 0), _handler(receiver))
        tls.sni_callback = lambda _sock, name, _context: receiver._server_name(name)
        self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        receiver.host, receiver.scheme = "localhost", "https"

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except OSError as exc:  # ssl.SSLError included
            self.receiver._handshake_failed(exc)
            return
        super().finish_request(request, client_address)


@contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A receiver on loopback; with `tls` (a server context), HTTPS at https://localhost:port."""
    receiver = Receiver()
    server = (
        ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        if tls is None
        else _TLSServer(receiver, tls)
    )
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="webhook receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
