"""Rendering the lookup pages: Jinja2 with autoescaping, and the headers every page carries.

The stylesheet is inlined and allowed by its hash, so the Content-Security-Policy can forbid
everything else: no script, no frame, no outside resource, forms only to this origin.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, RedirectResponse, Response

from certcheck.api.lookup import view
from certcheck.api.lookup.view import Text

_ENV = Environment(
    loader=PackageLoader("certcheck.api.lookup", "templates"),
    autoescape=True,  # every template is HTML, whatever its name says
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Hashed as rendered: base.html includes it inside <style>, where nothing may escape it.
_CSS = _ENV.get_template("lookup.css").render()
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
    # A status can change at the next sync: no shared cache may keep an old answer.
    "Cache-Control": "no-store",
}


def render(
    template: str,
    status: int = 200,
    *,
    headers: dict[str, str] | None = None,
    typed: str = "",
    freshness: str | None = None,
    **context: Any,
) -> HTMLResponse:
    html = _ENV.get_template(template).render(
        typed=typed,
        freshness=freshness,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def problem(
    status: int,
    message: Text,
    *,
    hint: Text | None = None,
    typed: str = "",
    freshness: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        "problem.html",
        status,
        headers=headers,
        typed=typed,
        freshness=freshness,
        code=status,
        message=message,
        hint=hint,
    )


def too_many(seconds: int) -> HTMLResponse:
    return problem(429, view.too_many(seconds), headers={"Retry-After": str(seconds)})


def see_other(path: str) -> Response:
    """A relative redirect (RFC 9110 section 10.2.2): no Host header is trusted to build it."""
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)
