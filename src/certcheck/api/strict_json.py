"""Request bodies as strict JSON (I-JSON, RFC 7493), sent as application/json.

FastAPI parses with json.loads, which accepts duplicate member names (last wins), NaN and
Infinity, and lone surrogates. This route class parses the body itself and refuses all three,
and strings holding a NUL character, which strict JSON allows but PostgreSQL cannot store.
It also checks the API key before a byte of the body is read (FastAPI reads the body before it
runs any dependency), and stops parsing a batch the moment it holds too many items. A large
body is parsed off the event loop, and a batch's items validated a slice at a time on it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, TypeAdapter, ValidationError

from certcheck.api.deps import PRINCIPAL_SCOPE_KEY, lifespan_state, require
from certcheck.checking import SLICE
from certcheck.db.types import first_unstorable
from certcheck.errors import InvalidJson, TooManyItems, UnstorableText, UnsupportedMediaType
from certcheck.keys import Scope

_bearer = HTTPBearer(auto_error=False)
# Only these escapes spell a lone surrogate or a NUL: most bodies need no walk.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
# Bodies larger than this are parsed in a thread: json.loads cannot yield, and a 10,000-item
# batch (~0.7 MB) takes tens of milliseconds. Below it, the hand-off would cost more than it saves.
_PARSE_INLINE_MAX = 64 * 1024


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not allowed in JSON bodies")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidJson(f"duplicate member name {key!r}")
        result[key] = value
    return result


def too_many_items(sent: str, max_items: int) -> TooManyItems:
    return TooManyItems(
        f"{sent} items sent; at most {max_items} per batch (use a re-check job for more)"
    )


class _Bounded:
    """The object hook, counting: a batch item is an object, so more objects than items
    allowed (plus the enclosing one) stops the parse before the rest are built."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self.objects = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        self.objects += 1
        if self.objects > self.max_items + 1:
            raise too_many_items(f"more than {self.max_items}", self.max_items)
        return _no_duplicates(pairs)


def loads_strict(body: bytes, *, max_items: int | None = None) -> Any:
    """The body's JSON value; with `max_items`, at most that many objects as batch items."""
    hook = _no_duplicates if max_items is None else _Bounded(max_items)
    try:
        text = body.decode("utf-8")
        value = json.loads(text, object_pairs_hook=hook, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InvalidJson("the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise InvalidJson(f"invalid JSON at {where}: {exc.msg}") from exc
    if max_items is not None:
        _refuse_long_batch(value, max_items)
    if _UNSTORABLE_ESCAPE.search(body):
        _refuse_unstorable(value)
    return value


def _refuse_long_batch(value: Any, max_items: int) -> None:
    # Items that are not objects (`[1, 1, ...]`) pass the hook: refuse them before validation,
    # which would otherwise list an error per item.
    items = value.get("items") if isinstance(value, dict) else None
    if isinstance(items, list) and len(items) > max_items:
        raise too_many_items(str(len(items)), max_items)


def _refuse_unstorable(value: Any) -> None:
    """Refuse the first string, member names included, that holds a lone surrogate (not
    I-JSON) or a NUL character (named by where it is, as a validation error names a field)."""
    found = first_unstorable(value)
    if found is None:
        return
    loc, text = found
    if "\x00" in text:
        raise UnstorableText.at(["body", *loc])
    raise InvalidJson("a string holds a lone surrogate (\\ud800-\\udfff)")


class _StrictJsonRequest(Request):
    items_model: type[BaseModel] | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            settings = lifespan_state(self)["settings"]
            body = await self.body()
            if len(body) > _PARSE_INLINE_MAX:
                value = await asyncio.to_thread(
                    loads_strict, body, max_items=settings.batch_max_items
                )
            else:
                value = loads_strict(body, max_items=settings.batch_max_items)
            if self.items_model is not None:
                value = await _validate_items(value, self.items_model)
            self._json = value
        return self._json


async def _validate_items(value: Any, model: type[BaseModel]) -> Any:
    """`value` with each valid one of its `items` replaced by the model it validates to, a slice
    at a time: in one piece, FastAPI's validation of 10,000 items holds the loop for ~0.1-0.5 s.

    FastAPI then validates the body as before, but a model instance passes as it is, so only
    the invalid items (left as sent) cost it work, and its errors and their locations
    (`["body", "items", i, ...]`) are the ones it always gave."""
    items = value.get("items") if isinstance(value, dict) else None
    if not isinstance(items, list):
        return value

    def validated(item: Any) -> Any:
        try:
            return model.model_validate(item, from_attributes=True)  # as FastAPI validates
        except ValidationError:
            return item

    # A slice in one call costs a third less than item by item; a slice holding an invalid
    # item is gone through again item by item, to keep its valid ones.
    many = _list_of(model)
    done: list[Any] = []
    for start in range(0, len(items), SLICE):
        if start:
            await asyncio.sleep(0)
        part = items[start : start + SLICE]
        try:
            done.extend(many.validate_python(part, from_attributes=True))
        except ValidationError:
            done.extend([validated(item) for item in part])
    return {**value, "items": done}


@functools.cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def is_json(content_type: str) -> bool:
    media, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    return media.strip().lower() == "application/json" and charset in ("", "utf-8")


RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


class StrictJsonRoute(APIRoute):
    """Set `required_scope` (see `strict_json_route`) to check the key before the body is read,
    and `items_model` for a body `{"items": [...]}` validated a slice of items at a time."""

    required_scope: ClassVar[Scope | None] = None
    items_model: ClassVar[type[BaseModel] | None] = None

    def get_route_handler(self) -> RouteHandler:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        authorise = None if self.required_scope is None else require(self.required_scope)

        async def strict_handler(request: Request) -> Response:
            if authorise is not None:
                # The route's own key dependency then returns this principal unchanged.
                state = lifespan_state(request)
                request.scope[PRINCIPAL_SCOPE_KEY] = await authorise(
                    request=request,
                    settings=state["settings"],
                    keys=state["keys"],
                    limiter=state["limiter"],
                    credentials=await _bearer(request),
                )
            if not is_json(request.headers.get("content-type", "")):
                raise UnsupportedMediaType("send the body as application/json (UTF-8)")
            strict = _StrictJsonRequest(request.scope, request.receive)
            strict.items_model = self.items_model
            return await handler(strict)

        return strict_handler


def strict_json_route(
    scope: Scope, *, items: type[BaseModel] | None = None
) -> type[StrictJsonRoute]:
    """A StrictJsonRoute whose API key must carry `scope`, checked from the headers alone;
    with `items`, the body's `items` are validated as that model a slice at a time."""
    attributes = {"required_scope": scope, "items_model": items}
    return type(f"StrictJsonRoute_{scope.value}", (StrictJsonRoute,), attributes)
