"""Limits applied before a request reaches a route: load shedding and body caps.

A pure ASGI middleware (no BaseHTTPMiddleware), so nothing is buffered here:
- past `max_in_flight` requests at once, answer 503 OVERLOADED at once rather than queue;
- a declared Content-Length over the route's cap gets 413 before a byte of the body is read,
  and a chunked body is counted as it arrives and refused the moment it passes the cap;
- while the process drains (SIGTERM), every answer says `Connection: close`, so keep-alive
  clients move to another replica between requests instead of meeting a closed socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from certcheck.api.problems import problem_of
from certcheck.config import Settings
from certcheck.db.deadline import request_budget
from certcheck.errors import CertcheckError, Overloaded, PayloadTooLarge

# Probes and scrapes must answer when the process is busiest; they never read a body.
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
# Streaming uploads spool to disk under caps of their own (CERTCHECK_JOB_MAX_UPLOAD_BYTES ...).
_STREAMING = ("/v1/recheck-jobs", "/v1/admin/registry/import", "/v1/watch/listings")
_CLOSE = (b"connection", b"close")


@dataclass(frozen=True, slots=True)
class BodyCaps:
    json: int  # any other request body
    verify: int  # POST /v1/verify: one listing

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyCaps:
        return cls(json=settings.max_body_bytes, verify=settings.verify_max_body_bytes)

    def for_path(self, path: str) -> int | None:
        if path.startswith(_STREAMING):
            return None
        return self.verify if path.rstrip("/") == "/v1/verify" else self.json


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds {cap} bytes")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length before we run
    return None


class InFlight:
    """Requests in progress, one count for the whole process: the middleware below and the
    verify lane in front of the app (api/verify_lane.py) share it."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count >= self.bound


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        caps: BodyCaps,
        in_flight: InFlight,
        database_budget: float,
    ) -> None:
        self.app = app
        self.caps = caps
        self.database_budget = database_budget
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _closing_when_draining(scope, send)
        if scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight.full:
            await _respond(scope, receive, send, _overloaded())
            return
        self.in_flight.count += 1
        try:
            with request_budget(self.database_budget):
                await self._capped(scope, receive, send)
        finally:
            self.in_flight.count -= 1

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.caps.for_path(scope["path"])
        if cap is None:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > cap:
            await _respond(scope, receive, send, _too_large(cap))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    # Raised inside the app: answered by api/problems.py, as from a route.
                    raise _too_large(cap)
            return message

        await self.app(scope, counted, send)


def _overloaded() -> Overloaded:
    return Overloaded("this instance has too many requests in progress; retry shortly")


async def _respond(scope: Scope, receive: Receive, send: Send, exc: CertcheckError) -> None:
    # Outside the app, so outside its exception handlers: the same answer, built directly.
    await problem_of(exc)(scope, receive, send)


def _closing_when_draining(scope: Scope, send: Send) -> Send:
    state: dict[str, Any] = scope.get("state") or {}
    lifecycle = state.get("lifecycle")

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start" and getattr(lifecycle, "draining", False):
            headers = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
            message = {**message, "headers": [*headers, _CLOSE]}
        await send(message)

    return send_closing
