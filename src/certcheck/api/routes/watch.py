"""Listing watch (docs/watch.md): upload watched listings, read or drop one, pull events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.deps import BatchKey, CheckerDep, EngineDep, SettingsDep
from certcheck.api.uploads import (
    NDJSON,
    NDJSON_TYPES,
    refuse_declared_length,
    upload_format,
    upload_limits,
)
from certcheck.api.watch_schemas import (
    InvalidLineOut,
    WatchedListingOut,
    WatchEventsOut,
    WatchUploadOut,
    event_out,
    listing_out,
)
from certcheck.api.watchlines import FIELDS, InvalidLine, parse_chunk
from certcheck.checking import Checker
from certcheck.errors import ListingNotWatched
from certcheck.jobs.chunks import InputChunk
from certcheck.jobs.framing import frame
from certcheck.jobs.upload import receive
from certcheck.watch.events import decode_cursor, encode_cursor, events_after
from certcheck.watch.listings import delete_listing, get_listing, upsert
from certcheck.watch.records import WatchInput

router = APIRouter(prefix="/v1/watch", tags=["listing watch"])

_CURSOR_PATTERN = r"^w1\.[A-Za-z0-9_-]{22}$"  # what watch/events.py issues
_REPORTED = 1_000  # invalid lines listed in the answer; all are counted
_NOT_WATCHED: dict[int | str, dict[str, Any]] = {404: {"description": "LISTING_NOT_WATCHED"}}
_Parsed = tuple[list[WatchInput], list[InvalidLine]]


@router.put(
    "/listings",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "one verify request per line (NDJSON), `listing_id` and `cert_no` "
            "required; `Content-Encoding: gzip` allowed",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
    responses={
        413: {"description": "UPLOAD_TOO_LARGE, TOO_MANY_LINES or LINE_TOO_LONG"},
        415: {"description": "UNSUPPORTED_MEDIA_TYPE or UNSUPPORTED_CONTENT_ENCODING"},
        422: {"description": "INVALID_GZIP"},
    },
)
async def put_watched_listings(
    request: Request, engine: EngineDep, settings: SettingsDep, checker: CheckerDep, key: BatchKey
) -> WatchUploadOut:
    """Insert or replace watched listings, each with its current decision (no event)."""
    fmt, gzipped = upload_format(request, NDJSON_TYPES, NDJSON)
    limits, framing = upload_limits(settings)
    refuse_declared_length(request, limits.max_upload_bytes)
    async with receive(request.stream(), media=fmt, gzipped=gzipped, limits=limits) as upload:
        chunks = frame(upload.file, fmt, framing, FIELDS)
        return await _upsert_all(
            engine, checker, key.platform, chunks, record=settings.check_records
        )


async def _upsert_all(
    engine: AsyncEngine,
    checker: Checker,
    platform: str,
    chunks: Iterator[InputChunk],
    *,
    record: bool,
) -> WatchUploadOut:
    upserted, invalid = 0, 0
    reported: list[InvalidLineOut] = []
    # Framing and parsing are CPU work: in a thread, the next chunk while this one is written.
    ahead = asyncio.create_task(asyncio.to_thread(_next_parsed, chunks))
    try:
        while (parsed := await ahead) is not None:
            ahead = asyncio.create_task(asyncio.to_thread(_next_parsed, chunks))
            taken, bad = parsed
            await upsert(engine, checker, platform, taken, record=record)
            upserted += len(taken)
            invalid += len(bad)
            room = _REPORTED - len(reported)
            reported += [
                InvalidLineOut(line=b.line, code=b.code, detail=b.detail) for b in bad[:room]
            ]
    finally:
        # The spooled file closes after this: the thread must be done reading it.
        await asyncio.wait({ahead})
        if not ahead.cancelled():
            ahead.exception()  # retrieved: when the upload failed already, it changes nothing
    return WatchUploadOut(upserted=upserted, invalid_lines=reported, invalid_count=invalid)


def _next_parsed(chunks: Iterator[InputChunk]) -> _Parsed | None:
    chunk = next(chunks, None)
    return None if chunk is None else parse_chunk(chunk)


@router.get("/listings/{listing_id}", responses=_NOT_WATCHED)
async def get_watched_listing(
    listing_id: str, engine: EngineDep, key: BatchKey
) -> WatchedListingOut:
    """One watched listing and its current decision."""
    listing = await get_listing(engine, key.platform, listing_id)
    if listing is None:
        raise ListingNotWatched(f"listing {listing_id!r} is not watched")
    return listing_out(listing)


@router.delete(
    "/listings/{listing_id}", status_code=204, response_class=Response, responses=_NOT_WATCHED
)
async def delete_watched_listing(listing_id: str, engine: EngineDep, key: BatchKey) -> Response:
    """Stop watching a listing: later registry changes produce no event for it."""
    if not await delete_listing(engine, key.platform, listing_id):
        raise ListingNotWatched(f"listing {listing_id!r} is not watched")
    return Response(status_code=204)


@router.get("/events", responses={422: {"description": "INVALID_CURSOR"}})
async def list_watch_events(
    engine: EngineDep,
    key: BatchKey,
    since: Annotated[
        str | None,
        Query(
            description="the `next` of an earlier answer; omit to start at the oldest",
            json_schema_extra={"pattern": _CURSOR_PATTERN},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> WatchEventsOut:
    """This platform's events (decision changes of its watched listings), oldest first."""
    start = decode_cursor(key.platform, since) if since else 0
    events = await events_after(engine, key.platform, start, limit)
    last = events[-1].seq if events else start
    return WatchEventsOut(
        events=[event_out(e) for e in events], next=encode_cursor(key.platform, last)
    )
