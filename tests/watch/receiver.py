"""A real webhook receiver for the tests: an HTTP server on loopback, in a thread of its own,
that answers each path as the test plans and records every request it got."""

from __future__ import annotations

import json
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
    # Per path, the statuses to answer in turn; once used up, `then` (200 unless changed).
    plans: dict[str, list[int]] = field(default_factory=dict)
    then: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    pause: float = 0.0  # seconds every answer waits
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

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


@contextmanager
def serving() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
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
