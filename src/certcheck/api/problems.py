"""Every error leaves as an RFC 9457 problem document with a machine-readable `code`.

All mapping happens here: CertcheckError subclasses (errors.py: our one vocabulary, raised by
routes, dependencies and everything below them), FastAPI's validation errors, Starlette's own
HTTP errors (unknown path, 405 ...), a database that cannot be reached from any endpoint
(503 REGISTRY_UNAVAILABLE, see db/outage.py) and, last, anything unexpected (500, logged,
never a traceback in the body).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from certcheck.db.outage import is_database_outage
from certcheck.errors import CertcheckError, RegistryUnavailable
from certcheck.observability.metrics import UNAVAILABLE

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_CODES_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMITED",
    503: "UNAVAILABLE",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:certcheck:problem:{code}",
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_of(exc: CertcheckError) -> JSONResponse:
    """The answer to `exc`; the middleware that answers before the app runs uses it too."""
    headers = exc.headers() or None
    return problem(
        exc.status, exc.code, exc.detail, title=exc.title, headers=headers, errors=exc.errors
    )


async def _certcheck_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CertcheckError)  # nosec B101 # only narrows the type
    if exc.status == 503:
        UNAVAILABLE.labels(code=exc.code).inc()
    if exc.status >= 500:
        log.warning("%s on %s %s: %s", exc.code, request.method, _route(request), exc.detail)
    return problem_of(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # nosec B101 # only narrows the type
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"][1:]) or "body"
    return problem(
        422,
        "VALIDATION_FAILED",
        f"{where}: {first['msg']}",
        title="Invalid request",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # nosec B101 # only narrows the type
    if isinstance(exc.__cause__, CertcheckError):
        # FastAPI turns whatever is raised while it reads a body into a bare 400 "error parsing
        # the body" (fastapi/routing.py): a body over its cap or not strict JSON says so itself.
        return await _certcheck_error(request, exc.__cause__)
    code = _CODES_BY_STATUS.get(exc.status_code, "HTTP_ERROR")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem(exc.status_code, code, str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    # Starlette's 405 names the methods of the first route matching the path; one path served
    # by several routes (GET and DELETE of a job) must name them all (RFC 9110 section 15.5.6).
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """An outage answers 503 like any RegistryUnavailable; anything else stays a logged 500."""
    if not is_database_outage(exc):
        return await _unexpected(request, exc)
    # The class names say enough; str(exc) of a SQLAlchemy error carries the statement.
    cause = exc.__cause__ or getattr(exc, "orig", None)
    reason = type(exc).__name__ + (f"/{type(cause).__name__}" if cause is not None else "")
    unavailable = RegistryUnavailable(f"the database did not answer ({reason})")
    return await _certcheck_error(request, unavailable)


def _route(request: Request) -> str:
    # The template, not the path: a path can carry a job id or a certificate number.
    return str(getattr(request.scope.get("route"), "path", "unmatched"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "INTERNAL", "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(CertcheckError, _certcheck_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Starlette picks the handler of the nearest class in the exception's MRO.
    for db_error in (OSError, sa.DBAPIError, sa.DisconnectionError, sa.TimeoutError):
        app.add_exception_handler(db_error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
