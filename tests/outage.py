"""Databases that go away: a closed port, a port that never answers, and a database that can
be taken away in the middle of a test (a TCP relay in front of PostgreSQL that is shut down, or
the directory of the SQLite file moved away).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (in the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def postgres_at(url: str, port: int) -> str:
    """The same PostgreSQL URL with its host and port replaced by 127.0.0.1:port."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


class Outage:
    """A database URL whose database can be made unreachable with `await outage.start()`."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self._real = url
        self._relay: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        if url.startswith("sqlite"):
            self._dir = tmp_path / "db"
            self._dir.mkdir()
            Path(url.removeprefix("sqlite+aiosqlite:///")).rename(self._dir / "certcheck.db")
            self.url = f"sqlite+aiosqlite:///{self._dir / 'certcheck.db'}"
        else:
            self.url = ""  # set by relay()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Outage]:
        if self._real.startswith("postgresql"):
            self._relay = await asyncio.start_server(self._forward, "127.0.0.1", 0)
            self.url = postgres_at(self._real, self._relay.sockets[0].getsockname()[1])
        try:
            yield self
        finally:
            await self.start()

    async def start(self) -> None:
        """From now on no new connection succeeds, and open ones to PostgreSQL are cut.

        Open SQLite connections keep their file: dispose of the engine to drop them.
        """
        if self._relay is None:
            if self._dir.exists():
                self._dir.rename(self._dir.with_name("db.gone"))
            return
        self._relay.close()
        for writer in list(self._links):
            writer.transport.abort()
        await self._relay.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        real = urlsplit(self._real)
        try:
            up_reader, up_writer = await asyncio.open_connection(real.hostname, real.port or 5432)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._links.difference_update((writer, up_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65_536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()
