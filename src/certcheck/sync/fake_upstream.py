"""`certcheck fake-upstream`: a snapshot file served as the upstream feed, with scripted faults,
for trying the sync out and for end-to-end tests. What it serves and the faults' syntax
(`KIND[:ARG][@WHEN]`, parsed by `parse_fault` here) are its help text, in
cli/parser/service.py, which the command line shows without importing this module."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from certcheck.snapshots.reader import RowError, detect_format, iter_records
from certcheck.sync.feed import rfc3339
from certcheck.sync.feedpage import parse_timestamp

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_FAULT = re.compile(
    r"(?P<kind>[0-9]{3}|trickle|truncate|invalid-json|bad-status|loop|as-of-back)"
    r"(?::(?P<arg>[0-9.]+))?(?:@(?:(?P<request>[0-9]+)|page(?P<page>[0-9]+)))?"
)
_DEFAULT_PAGE_SIZE, _MAX_PAGE_SIZE = 1_000, 10_000


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    arg: float | None = None
    request: int | None = None  # only the Nth request
    page: int | None = None  # every request for page N

    def applies(self, request: int, page: int) -> bool:
        return self.request in (None, request) and self.page in (None, page)


def parse_fault(spec: str) -> Fault:
    match = _FAULT.fullmatch(spec.strip())
    if match is None:
        raise ValueError(f"cannot read the fault {spec!r}; see `certcheck fake-upstream --help`")
    number = match["request"] or match["page"]
    return Fault(
        kind=match["kind"],
        arg=float(match["arg"]) if match["arg"] else None,
        request=int(match["request"]) if match["request"] else None,
        page=int(number) if match["page"] else None,
    )


def load_items(path: Path) -> list[dict[str, object]]:
    """The snapshot's rows as feed items, sorted by (updated_at, cert_no)."""
    fmt = detect_format(filename=path.name)
    with path.open("rb") as stream:
        rows = [dict(r[1]) for r in iter_records(stream, fmt) if not isinstance(r, RowError)]
    end = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    for index, row in enumerate(rows):
        if parse_timestamp(row.get("updated_at")) is None:
            row["updated_at"] = rfc3339(end - timedelta(milliseconds=len(rows) - index))
    return sorted(rows, key=_order)


def _order(row: dict[str, object]) -> tuple[datetime, str]:
    moment = parse_timestamp(row["updated_at"]) or datetime.min.replace(tzinfo=UTC)
    return moment, str(row.get("cert_no"))


class FakeUpstream:
    """The ASGI app: `GET /certificates?updated_since=&page_token=&page_size=`."""

    def __init__(
        self, items: list[dict[str, object]], faults: Sequence[Fault], token: str | None = None
    ) -> None:
        self._items = items
        self._faults = faults
        self._token = token
        self._requests = 0

    async def __call__(self, scope: Scope, receive: object, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/certificates" or scope["method"] != "GET":
            await _respond(send, 404, b'{"error": "not found"}')
            return
        if self._token and _header(scope, b"authorization") != f"Bearer {self._token}":
            await _respond(send, 401, b'{"error": "unauthorized"}')
            return
        self._requests += 1
        try:
            await self._page(scope, send)
        except ValueError as exc:
            await _respond(send, 400, json.dumps({"error": str(exc)}).encode())

    async def _page(self, scope: Scope, send: Send) -> None:
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        size = max(1, min(int(query.get("page_size") or _DEFAULT_PAGE_SIZE), _MAX_PAGE_SIZE))
        token = query.get("page_token")
        offset = _offset(token)
        number = offset // size + 1
        faults = {f.kind: f for f in self._faults if f.applies(self._requests, number)}
        log.info("request %d: page %d, faults: %s", self._requests, number, ", ".join(faults))
        status = next((f for kind, f in faults.items() if kind.isdigit()), None)
        if status is not None:
            await _respond(send, int(status.kind), b'{"error": "scripted"}', _retry_after(status))
            return
        matching = self._since(query.get("updated_since"))
        after = offset + size
        document = {
            "items": _items(matching[offset:after], faults.get("bad-status")),
            "next_page_token": f"o{after}" if after < len(matching) else None,
            "as_of": rfc3339(
                datetime.now(UTC) - timedelta(days=1 if "as-of-back" in faults else 0)
            ),
        }
        if "loop" in faults:
            document["next_page_token"] = token or f"o{offset}"
        body = json.dumps(document, ensure_ascii=False).encode()
        if "invalid-json" in faults:
            body = body[:-1]  # the closing brace gone: well framed, not JSON
        await _deliver(send, body, faults)

    def _since(self, since: str | None) -> list[dict[str, object]]:
        if not since:
            return self._items
        moment = parse_timestamp(since)
        if moment is None:
            raise ValueError("updated_since is not an RFC 3339 timestamp")
        return [item for item in self._items if _order(item)[0] > moment]


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not re.fullmatch("o[0-9]{1,9}", token):
        raise ValueError("unknown page_token")
    return int(token[1:])


def _items(items: list[dict[str, object]], fault: Fault | None) -> list[dict[str, object]]:
    if fault is None:
        return items
    count = len(items) if fault.arg is None else int(fault.arg)
    return [{**item, "status": "no-such-status"} for item in items[:count]] + items[count:]


def _retry_after(fault: Fault) -> dict[bytes, bytes]:
    if fault.kind not in ("429", "503"):
        return {}
    return {b"retry-after": str(int(fault.arg if fault.arg is not None else 1)).encode()}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _respond(
    send: Send, status: int, body: bytes, headers: dict[bytes, bytes] | None = None
) -> None:
    await _start(send, status, len(body), headers)
    await send({"type": "http.response.body", "body": body})


async def _start(
    send: Send, status: int, length: int, headers: dict[bytes, bytes] | None = None
) -> None:
    fields = {b"content-type": b"application/json", b"content-length": str(length).encode()}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": list({**fields, **(headers or {})}.items()),
        }
    )


async def _deliver(send: Send, body: bytes, faults: dict[str, Fault]) -> None:
    await _start(send, 200, len(body))
    if "truncate" in faults:
        # Returning before the body is complete makes the server close the connection.
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        return
    if "trickle" in faults:
        pause = faults["trickle"].arg or 0.2
        for index in range(len(body) - 1):
            await send(
                {"type": "http.response.body", "body": body[index : index + 1], "more_body": True}
            )
            await asyncio.sleep(pause)
        body = body[-1:]
    await send({"type": "http.response.body", "body": body})


def serve(
    snapshot: Path, *, host: str, port: int, faults: Sequence[Fault], token: str | None
) -> None:
    """Serve until interrupted (uvicorn, one process)."""
    import uvicorn

    app = FakeUpstream(load_items(snapshot), faults, token)
    log.info("serving %s on http://%s:%d/certificates", snapshot, host, port)
    uvicorn.run(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,  # a trickling answer would otherwise hold the shutdown
    )
