"""uvicorn's httptools protocol with deadlines and a header size cap.

uvicorn waits for a request's headers and body for ever: one header byte a second holds a
connection (and a descriptor) indefinitely. Here the line and headers must arrive within
CERTCHECK_HEADER_TIMEOUT seconds and CERTCHECK_MAX_HEADER_BYTES bytes (else 408 / 431), and a
body must average CERTCHECK_BODY_MIN_RATE bytes a second once CERTCHECK_BODY_TIMEOUT seconds
have passed, not counting time the server itself stopped reading (flow control).
"""

from __future__ import annotations

import asyncio
import functools
import http
import json
from dataclasses import dataclass
from itertools import chain
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from certcheck.api.problems import PROBLEM_JSON
from certcheck.config import Settings

_TICK = 1.0  # seconds between two looks at a body's progress
# On shutdown, how long an idle connection may still bring a request: a client that has just
# connected (or reused a kept-alive connection) may have one on the wire, and closing with it
# unread makes the kernel answer with a reset.
_SHUTDOWN_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float
    max_header_bytes: int
    body_timeout: float
    body_min_rate: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            settings.header_timeout,
            settings.max_header_bytes,
            settings.body_timeout,
            settings.body_min_rate,
        )


@functools.cache
def process_limits() -> ConnectionLimits:
    # uvicorn builds the protocol from an import string in every worker process: read the
    # environment there, once, like the app factory does.
    return ConnectionLimits.from_settings(Settings())


def raw_problem(status: int, code: str, detail: str) -> bytes:
    """A complete HTTP/1.1 problem answer that closes the connection, for use outside the app."""
    phrase = http.HTTPStatus(status).phrase
    body = json.dumps(
        {
            "type": f"urn:certcheck:problem:{code}",
            "title": phrase,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class OneSendPerTurn:
    """A connection's transport whose writes of one turn of the event loop leave in one send.

    uvicorn writes an answer's status line and headers, then its body: two `send` calls, and
    on this kind of machine (a VM, loopback) the first of them cost ~25 us of the worker's
    CPU, more than the rest of uvicorn's handling of a request (py-spy of a served cache-warm
    verify: 13 % of all samples on that one line). Writes are kept until the end of the turn
    (`call_soon` runs before the loop next polls for I/O) and go out joined, in order; `close`
    sends what is kept first, as the transport itself does with its buffer.
    """

    __slots__ = ("_kept", "_loop", "_transport", "is_closing")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._kept: list[bytes] | None = None
        # uvicorn asks it twice a request: the transport's own method, not __getattr__ each time.
        self.is_closing = transport.is_closing

    def write(self, data: bytes) -> None:
        if self._kept is None:
            self._kept = [data]
            self._loop.call_soon(self._send)
        else:
            self._kept.append(data)

    def _send(self) -> None:
        kept, self._kept = self._kept, None
        if kept and not self._transport.is_closing():
            self._transport.write(b"".join(kept))

    def close(self) -> None:
        self._send()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (reading paused or resumed, is_closing, extra info) is the transport's.
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = process_limits()
        self._timer: asyncio.TimerHandle | None = None
        self._timing_body = False  # the timer is the body's tick (else the headers' deadline)
        # Set by the parser's callbacks, acted on once the data received has been parsed: most
        # requests arrive whole in one read and never need a timer of their own.
        self._awaiting: str | None = None  # "headers", "body" or None (between requests)
        self._in_headers = True
        self._header_bytes = 0
        self._body_bytes = 0
        self._body_seconds = 0.0
        self._refused = False
        self._stopping = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneSendPerTurn(transport, self.loop))  # type: ignore[arg-type]
        self._set_timer(self.limits.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_timer(None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, "HEADERS_TOO_LARGE", self._too_large())
        elif self._refused:
            return
        elif self._awaiting == "headers" and self._timer is None:
            self._set_timer(self.limits.header_timeout, self._headers_late)
        elif self._awaiting == "body" and not self._timing_body:
            self._set_timer(_TICK, self._body_tick)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal below already answered and closed
            super().send_400_response(msg)

    # Parser callbacks.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting = "headers"  # on a kept-alive connection, its deadline starts now

    def on_headers_complete(self) -> None:
        # ": " and CRLF after each name and value; summed by C, no generator frame a request.
        size = len(self.url) + sum(map(len, chain.from_iterable(self.headers)))
        size += 4 * len(self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse(431, "HEADERS_TOO_LARGE", self._too_large())
            raise ConnectionAbortedError("headers too large")  # stops the parser
        self._in_headers = False
        self._body_bytes, self._body_seconds = 0, 0.0
        self._awaiting = "body"
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # answer it, then close

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._awaiting = None
        if self._timer is not None:
            self._set_timer(None)
        self._in_headers, self._header_bytes = True, 0
        super().on_message_complete()

    def shutdown(self) -> None:
        """The server is stopping: finish the request in progress, or wait briefly for one."""
        self._stopping = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(_SHUTDOWN_GRACE, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._header_bytes == 0 and not self.transport.is_closing():
            self.transport.close()

    # Deadlines.
    def _set_timer(self, delay: float | None, callback: Any = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None if delay is None else self.loop.call_later(delay, callback)
        self._timing_body = callback == self._body_tick

    def _headers_late(self) -> None:
        self._timer = None
        detail = f"the request's headers did not arrive within {self.limits.header_timeout:g} s"
        self._refuse(408, "REQUEST_TIMEOUT", detail)

    def _body_tick(self) -> None:
        self._timer = None
        if not self.flow.read_paused:  # time we stopped reading is not the client's fault
            self._body_seconds += _TICK
        late = self._body_seconds - self.limits.body_timeout
        if late > 0 and self._body_bytes < late * self.limits.body_min_rate:
            detail = f"the request body arrived slower than {self.limits.body_min_rate} bytes/s"
            self._refuse(408, "REQUEST_TIMEOUT", detail)
            return
        self._set_timer(_TICK, self._body_tick)

    def _refuse(self, status: int, code: str, detail: str) -> None:
        """Answer (unless the app has begun to) and close; the app sees a disconnect."""
        self._refused = True
        self._set_timer(None)
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(raw_problem(status, code, detail))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _too_large(self) -> str:
        return f"the request line and headers exceed {self.limits.max_header_bytes} bytes"
