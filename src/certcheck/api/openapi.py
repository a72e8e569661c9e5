"""The served OpenAPI document: every error response is a problem document, as it really is.

`install` also serves the pages that browse it (`/docs`, `/redoc`) from local assets."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from certcheck.api import docs
from certcheck.api.problems import PROBLEM_JSON
from certcheck.api.schemas import Problem

_COMMON_ERRORS = {
    "401": "UNAUTHENTICATED: no key, or an unknown or revoked one",
    "403": "FORBIDDEN: the key lacks the scope",
    "422": "VALIDATION_FAILED, INVALID_JSON or another code naming what is wrong",
}

_UNSUPPORTED_MEDIA = "UNSUPPORTED_MEDIA_TYPE: the body is not of a media type listed here"


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    docs.install(app)


def _document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            responses = operation["responses"]
            if path.startswith("/v1/"):
                for status, text in _COMMON_ERRORS.items():
                    responses.setdefault(status, {"description": text})
            if "requestBody" in operation:  # every body is checked against its media types
                responses.setdefault("415", {"description": _UNSUPPORTED_MEDIA})
            for status, response in responses.items():
                if int(status) >= 400 and path != "/readyz":
                    response["content"] = copy.deepcopy(problem)
    return document
