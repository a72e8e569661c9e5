"""The ceiling: a bare ASGI app that reads the request body and answers a fixed JSON document.

    python -m uvicorn bench.baselines.bare_asgi:app --loop uvloop --http httptools

No framework, no validation, no database: what uvicorn with uvloop and httptools can answer on
one worker on this machine. Every certcheck figure that is a rate is compared with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_BODY = b'{"decision":"allow","reason":"VALID","reasons":["VALID"]}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))],
}
_ANSWER = {"type": "http.response.body", "body": _BODY}


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start, nothing to stop
        while (message := await receive())["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send(_START)
    await send(_ANSWER)
