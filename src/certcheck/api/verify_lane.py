"""POST /v1/verify, answered in front of the FastAPI app when nothing about it is unusual.

The hottest route is the simplest: a cached key, a small JSON body, one decision. Through
FastAPI it also paid for seven middleware layers, the router and dependency solving, several
times the cost of the decision itself. This lane answers the common case directly and hands
everything else to the app, which answers it as it always did:

- the key must be in the key cache, confirmed, with the verify scope, within its rate limit
  (a key the cache does not hold is looked up, and refused, by the app);
- the body must be sent with a Content-Length within CERTCHECK_VERIFY_MAX_BODY_BYTES, as
  application/json, and be strict JSON that validates as a verify request;
- the process must not be draining or at CERTCHECK_MAX_IN_FLIGHT, and no dependency may be
  overridden (tests do that).

A request handed over after its body was read gets the body replayed, and its key is not
checked or counted again (the strict route reuses the principal found here). Errors raised
while deciding (an unreachable registry, say) are answered by the app's own exception handlers,
so every problem answer still comes from one place (api/problems.py). The answer's headers, log
line and metrics are the ones the app gives.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from certcheck.api.answers import verify_json
from certcheck.api.deps import PRINCIPAL_SCOPE_KEY, State
from certcheck.api.limits import InFlight
from certcheck.api.routes.verify import decided
from certcheck.api.schemas import VerifyRequest, verify_request_from_json
from certcheck.api.strict_json import is_json, loads_strict
from certcheck.config import AuthMode
from certcheck.db.deadline import request_budget
from certcheck.errors import InvalidJson, UnstorableText
from certcheck.keys import Principal
from certcheck.keys import Scope as KeyScope
from certcheck.observability.requests import record, request_id_of

PATH = "/v1/verify"
_JSON = b"application/json"


class _Template:
    """What the log line, the histogram and the error handlers read of the matched route."""

    path = PATH


# An instance, not the class: compiled (pyproject.toml), `path` is an instance attribute, and
# the class's own `path` is its descriptor, which the request log and the histogram's route
# label then showed as "<attribute 'path' of '_Template' objects>".
_ROUTE = _Template()


class VerifyLane:
    def __init__(self, app: FastAPI, handover: ASGIApp, in_flight: InFlight) -> None:
        self._app = app
        self._handover = handover
        self._in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: State | None = scope.get("state")
        if (
            state is None
            or self._in_flight.full
            or self._app.dependency_overrides
            or state["lifecycle"].draining
        ):
            await self._handover(scope, receive, send)
            return
        length, content_type, token = _headers(scope)
        settings = state["settings"]
        if length is None or length > settings.verify_max_body_bytes or not is_json(content_type):
            await self._handover(scope, receive, send)
            return
        principal = _principal(state, token)
        if principal is None:
            await self._handover(scope, receive, send)
            return
        # From here the key is checked and counted: a hand-over must not check it again.
        scope[PRINCIPAL_SCOPE_KEY] = principal
        state_dict: dict[str, Any] = scope["state"]
        state_dict["platform"] = principal.platform
        started = time.perf_counter()
        self._in_flight.count += 1  # as RequestLimits counts it: from before the body is read
        try:
            messages, body = await _read(receive, length)
            request = None if body is None else _parsed(body)
            if request is not None:
                await self._answer(scope, receive, send, state, principal, request, started)
                return
        finally:
            self._in_flight.count -= 1
        await self._handover(scope, _replaying(messages, receive), send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        state: State,
        principal: Principal,
        request: VerifyRequest,
        started: float,
    ) -> None:
        request_id = request_id_of(scope)
        scope["state"]["request_id"] = request_id
        scope["route"] = _ROUTE
        status = 500  # as the app's request log says of an answer that was never sent
        try:
            try:
                with request_budget(state["settings"].db_timeout):
                    check = await decided(
                        request, state["checker"], state["evidence"], principal, scope["state"]
                    )
            except Exception as exc:
                status = await self._problem(scope, receive, send, exc, request_id)
                return
            body = verify_json(check, request.listing_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", b"%d" % len(body)),
                        (b"content-type", _JSON),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            status = 200
        finally:
            record(scope, status, time.perf_counter() - started, request_id)

    async def _problem(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception, request_id: str
    ) -> int:
        """The app's own answer to `exc`: the handler Starlette would pick, nearest class first."""
        handlers = self._app.exception_handlers
        handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
        response = handler(Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response
        response.headers["x-request-id"] = request_id
        await response(scope, receive, send)
        status: int = response.status_code
        return status


def _headers(scope: Scope) -> tuple[int | None, str, str | None]:
    """Content-Length, Content-Type and the bearer token, in one pass over the headers."""
    length: int | None = None
    content_type = ""
    token: str | None = None
    for header in scope["headers"]:  # two-item iterables (ASGI): tuples from uvicorn
        # Typed as the bytes ASGI says they are, so that the compiled lane compares and decodes
        # them as bytes, not as any object: a third of the function's cost.
        name: bytes = header[0]
        value: bytes = header[1]
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            token = credentials if scheme.lower() == "bearer" and credentials else None
    return length, content_type, token


# Members read once: an enum member read from its class costs a Python-level lookup (~0.1 us).
_AUTH_DISABLED = AuthMode.DISABLED
_VERIFY_SCOPE = KeyScope.VERIFY


def _principal(state: State, token: str | None) -> Principal | None:
    if state["settings"].auth is _AUTH_DISABLED:
        return None  # the app's trusted local principal; rare enough to leave to it
    if token is None:
        return None
    principal = state["keys"].cached(token)
    if principal is None or _VERIFY_SCOPE not in principal.scopes:
        return None
    if state["limiter"].retry_after(principal.key_id) is not None:
        return None  # refused by the app, with its Retry-After; a refused hit is not counted
    return principal


async def _read(receive: Receive, length: int) -> tuple[list[Message], bytes | None]:
    """The messages received and the body; no body when it is not exactly `length` bytes or
    the client left (the app then answers that as it always did)."""
    messages: list[Message] = []
    parts: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        part = message.get("body", b"")
        received += len(part)
        if received > length:
            return messages, None
        parts.append(part)
        if not message.get("more_body", False):
            break
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    return messages, body if received == length else None


# A member name sent twice: pydantic's JSON parser would keep the last, strict JSON refuses it.
_NAMES = tuple(f'"{name}"'.encode() for name in VerifyRequest.model_fields)


def _parsed(body: bytes) -> VerifyRequest | None:
    """The request, when the body is strict JSON that validates; else None (the app answers
    with its 400 or 422 and their details).

    pydantic parses from the bytes in one step. What it would accept that strict JSON does not
    needs an escape (a lone surrogate, a NUL; a member name spelt with escapes) or a name twice;
    NaN, Infinity and big numbers fail validation anyway (every field is a string). Such bodies
    are parsed the strict way first, as the app does."""
    try:
        if b"\\" in body or any(body.count(name) > 1 for name in _NAMES):
            return VerifyRequest.model_validate(loads_strict(body))
        return verify_request_from_json(body)
    except (InvalidJson, UnstorableText, ValidationError):
        return None


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
