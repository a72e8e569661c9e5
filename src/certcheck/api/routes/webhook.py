"""The listing watch's webhook (docs/watch.md "Webhooks"): register, inspect, remove."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from certcheck.api.deps import BatchKey, EngineDep, SettingsDep
from certcheck.api.strict_json import strict_json_route
from certcheck.api.watch_schemas import (
    WebhookIn,
    WebhookOut,
    WebhookRegisteredOut,
    webhook_out,
)
from certcheck.errors import WebhookNotFound
from certcheck.keys import Scope
from certcheck.watch.webhooks import register, remove, state

router = APIRouter(
    prefix="/v1/watch", route_class=strict_json_route(Scope.BATCH), tags=["listing watch"]
)

_NONE: dict[int | str, dict[str, Any]] = {404: {"description": "WEBHOOK_NOT_FOUND"}}
_NONE_DETAIL = "no webhook is registered for this platform"


@router.put(
    "/webhook",
    responses={422: {"description": "WEBHOOK_URL_REFUSED, INVALID_JSON or VALIDATION_FAILED"}},
)
async def put_watch_webhook(
    body: WebhookIn, engine: EngineDep, settings: SettingsDep, key: BatchKey
) -> WebhookRegisteredOut:
    """Register (or replace) this platform's webhook; events recorded from now on are POSTed
    to it, signed with the secret returned here (and only here)."""
    registered = await register(
        engine, key.platform, body.url, allow_private=settings.webhook_allow_private
    )
    return WebhookRegisteredOut(url=registered.url, secret=registered.secret)


@router.get("/webhook", responses=_NONE)
async def get_watch_webhook(engine: EngineDep, key: BatchKey) -> WebhookOut:
    """This platform's webhook and how its deliveries stand (never the secret)."""
    found = await state(engine, key.platform)
    if found is None:
        raise WebhookNotFound(_NONE_DETAIL)
    return webhook_out(found)


@router.delete("/webhook", status_code=204, response_class=Response, responses=_NONE)
async def delete_watch_webhook(engine: EngineDep, key: BatchKey) -> Response:
    """Stop delivering: events stay readable through GET /v1/watch/events."""
    if not await remove(engine, key.platform):
        raise WebhookNotFound(_NONE_DETAIL)
    return Response(status_code=204)
