"""Request bodies as strict JSON (I-JSON, RFC 7493), sent as application/json.

FastAPI parses with json.loads, which accepts duplicate member names (last wins), NaN and
Infinity, and lone surrogates. This route class parses the body itself and refuses all three.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from certcheck.api.problems import ProblemException


def _reject_constant(name: str) -> Any:
    raise ProblemException(422, "INVALID_JSON", f"{name} is not allowed in JSON bodies")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ProblemException(422, "INVALID_JSON", f"duplicate member name {key!r}")
        result[key] = value
    return result


def loads_strict(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ProblemException(422, "INVALID_JSON", "the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise ProblemException(
            422, "INVALID_JSON", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    _refuse_lone_surrogates(value)
    return value


def _refuse_lone_surrogates(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ProblemException(
                    422, "INVALID_JSON", "a string holds a lone surrogate (\\ud800-\\udfff)"
                ) from exc
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


def _is_json(content_type: str) -> bool:
    media, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    return media.strip().lower() == "application/json" and charset in ("", "utf-8")


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_handler(request: Request) -> Response:
            if not _is_json(request.headers.get("content-type", "")):
                raise ProblemException(
                    415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json (UTF-8)"
                )
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict_handler
