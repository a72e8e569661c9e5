"""Bounds on an admin snapshot upload: caps on the bytes sent and on what they inflate to while
it streams in, then a deadline and the client's presence for the import that follows
(cancelled, it rolls back and frees the lock)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import IO, Any, TypeVar

from starlette.requests import Request

from certcheck.errors import ImportAborted, InvalidSnapshot, UploadRefused
from certcheck.jobs.upload import UploadLimits, receive, too_large

_T = TypeVar("_T")

# Seconds between two looks at whether the client is still there.
DISCONNECT_POLL = 0.25


@contextlib.asynccontextmanager
async def spooled_body(
    request: Request, limits: UploadLimits, *, gzipped: bool
) -> AsyncIterator[IO[bytes]]:
    """The request body, gunzipped if `gzipped`, in a temporary file positioned at its start.

    413 UPLOAD_TOO_LARGE once the bytes sent or their content is over `limits`, as a re-check
    upload (the same bounded, off-loop gunzip: a bomb costs a block of memory at a time);
    422 INVALID_SNAPSHOT when the gzip is broken, as the snapshot reader said before.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_upload_bytes:
        raise too_large("the snapshot upload", limits.max_upload_bytes)
    async with contextlib.AsyncExitStack() as stack:
        received = receive(request.stream(), media="snapshot", gzipped=gzipped, limits=limits)
        try:
            upload = await stack.enter_async_context(received)
        except UploadRefused as exc:
            if exc.code != "INVALID_GZIP":
                raise
            raise InvalidSnapshot(exc.detail) from exc
        yield upload.file


async def bounded(request: Request, work: Coroutine[Any, Any, _T], *, seconds: float) -> _T:
    """Run `work` to its end, unless `seconds` pass or the client goes first.

    Either way `work` is cancelled and awaited (its transaction rolled back, its lock released)
    before ImportAborted is raised: IMPORT_TIMEOUT or IMPORT_CANCELLED.
    """
    timed_out = False
    task = asyncio.create_task(work)
    watcher = asyncio.create_task(_until_gone(request))
    try:
        async with asyncio.timeout(seconds):
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        timed_out = True
    finally:
        watcher.cancel()
        if not task.done():  # timed out, the client went, or this request was cancelled
            await _stop(task)
    if task.cancelled():  # stopped before it committed; one that committed is reported
        if timed_out:
            raise ImportAborted(
                f"the import took longer than {seconds:g} seconds and was rolled back; "
                "the registry is unchanged"
            )
        raise ImportAborted(
            "the client went away; the import was rolled back", code="IMPORT_CANCELLED"
        )
    return task.result()


async def _until_gone(request: Request) -> None:
    # Polled: the ASGI server tells of a disconnect only through receive(), no event to wait on.
    while not await request.is_disconnected():  # noqa: ASYNC110
        await asyncio.sleep(DISCONNECT_POLL)


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    # Waited for, not awaited: its CancelledError is its own, not this task's.
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: failing while being stopped changes nothing
