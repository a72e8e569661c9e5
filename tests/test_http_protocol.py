"""The served connection's transport: an answer leaves in one send, in order, before a close."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from certcheck.http_protocol import GuardedHttpToolsProtocol, OneSendPerTurn


class Transport:
    """What the event loop's socket transport would have sent, one entry per send."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_writes_of_one_turn_leave_joined_in_one_send() -> None:
    raw = Transport()
    transport = OneSendPerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"{}")

    assert raw.sent == []
    await next_turn()
    assert raw.sent == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


async def test_writes_of_different_turns_leave_in_their_own_sends() -> None:
    raw = Transport()
    transport = OneSendPerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"a")
    await next_turn()
    transport.write(b"b")
    await next_turn()

    assert raw.sent == [b"a", b"b"]


async def test_close_sends_what_is_kept_first() -> None:
    raw = Transport()
    transport = OneSendPerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"answer")
    transport.close()
    await next_turn()

    assert raw.sent == [b"answer"]
    assert raw.closed


async def test_nothing_is_sent_on_a_connection_already_closing() -> None:
    raw = Transport()
    transport = OneSendPerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"late")
    raw.close()  # the client went away meanwhile
    await next_turn()

    assert raw.sent == []


async def test_everything_else_is_the_transports() -> None:
    raw = Transport()
    transport: Any = OneSendPerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.pause_reading()

    assert raw.reading is False
    assert transport.get_extra_info("peername") == ("127.0.0.1", 50000)
    assert transport.is_closing() is False


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    body = b'{"status":"ok"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def answered(request: bytes) -> Transport:
    config = Config(app=app, http="httptools", lifespan="off", log_config=None)
    config.load()
    protocol = GuardedHttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    raw = Transport()
    protocol.connection_made(raw)  # type: ignore[arg-type]
    protocol.data_received(request)
    for _ in range(10):
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return raw


async def test_an_answer_leaves_in_one_send() -> None:
    raw = await answered(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

    assert len(raw.sent) == 1
    assert raw.sent[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.sent[0].endswith(b'\r\n\r\n{"status":"ok"}')


async def test_an_answer_that_closes_the_connection_is_sent_before_the_close() -> None:
    raw = await answered(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    assert len(raw.sent) == 1
    assert raw.sent[0].endswith(b'{"status":"ok"}')
    assert raw.closed
