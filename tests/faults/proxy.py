"""A loopback TCP proxy whose behaviour can be switched while connections are open.

    pass          forward both ways
    delay N       forward, each chunk N ms late (a slow network or an overloaded server)
    blackhole     accept, forward nothing, answer nothing (a hung server or a lost route)
    reset         send RST on every connection, new and open (SO_LINGER 0)
    close-after N forward N bytes per connection in all, then close it (a cut mid-answer)

A switch applies at once to open connections too, so a pool's idle connections see it.
Threads, not asyncio: the proxy must keep working while a test's thread blocks.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

_TICK = 0.02  # seconds between looks at the mode while nothing moves


class Mode(enum.Enum):
    PASS = "pass"
    DELAY = "delay"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    CLOSE_AFTER = "close-after"


@dataclass(frozen=True, slots=True)
class Fault:
    mode: Mode
    arg: int = 0  # ms for DELAY, bytes for CLOSE_AFTER


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and, once forwarding starts, its upstream connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.forwarded = 0
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def close(self, *, reset: bool = False) -> None:
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._fault = Fault(Mode.PASS)
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.1)  # closing a socket does not wake a blocked accept()
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._acceptor.start()

    @property
    def fault(self) -> Fault:
        return self._fault

    def set(self, mode: Mode, arg: int = 0) -> None:
        self._fault = Fault(mode, arg)
        if mode is Mode.RESET:
            for link in self._open_links():
                link.close(reset=True)

    def passthrough(self) -> None:
        self.set(Mode.PASS)

    def delay(self, ms: int) -> None:
        self.set(Mode.DELAY, ms)

    def blackhole(self) -> None:
        self.set(Mode.BLACKHOLE)

    def reset(self) -> None:
        self.set(Mode.RESET)

    def close_after(self, nbytes: int) -> None:
        self.set(Mode.CLOSE_AFTER, nbytes)

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for link in self._open_links():
            link.close(reset=True)
        self._acceptor.join(timeout=5)

    def _open_links(self) -> list[_Link]:
        with self._lock:
            return list(self._links)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            link = _Link(client)
            with self._lock:
                self._links.add(link)
            threading.Thread(target=self._serve, args=(link,), daemon=True).start()

    def _serve(self, link: _Link) -> None:
        try:
            if self._hold(link) and self._connect(link):
                self._forward(link)
        finally:
            link.close()
            with self._lock:
                self._links.discard(link)

    def _hold(self, link: _Link) -> bool:
        """Wait while the mode is blackhole; False if the link must not go on."""
        while self._fault.mode is Mode.BLACKHOLE:
            if self._stopping.is_set() or link.closed.is_set():
                return False
            time.sleep(_TICK)
        if self._fault.mode is Mode.RESET:
            link.close(reset=True)
            return False
        return True

    def _connect(self, link: _Link) -> bool:
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            link.close(reset=True)
            return False
        with link.lock:
            if not link.closed.is_set():
                link.upstream = upstream
                return True
        upstream.close()  # the link was closed (proxy closing, reset) while we connected
        return False

    def _forward(self, link: _Link) -> None:
        assert link.upstream is not None
        peers = {link.client: link.upstream, link.upstream: link.client}
        while not link.closed.is_set() and not self._stopping.is_set():
            fault = self._fault
            if fault.mode is Mode.RESET:
                link.close(reset=True)
                return
            if fault.mode is Mode.BLACKHOLE:
                time.sleep(_TICK)  # read nothing: the peers' buffers fill and they wait
                continue
            try:
                ready, _, _ = select.select(list(peers), [], [], _TICK)
                for source in ready:
                    if not self._pass_on(link, source, peers[source]):
                        return
            except (OSError, ValueError):
                return  # a socket closed under us: the link is done

    def _pass_on(self, link: _Link, source: socket.socket, sink: socket.socket) -> bool:
        data = source.recv(65536)
        if not data:
            return False
        fault = self._fault
        if fault.mode is Mode.DELAY:
            time.sleep(fault.arg / 1000)
        if fault.mode is Mode.CLOSE_AFTER:
            room = max(fault.arg - link.forwarded, 0)
            sink.sendall(data[:room])
            link.forwarded += min(room, len(data))
            return len(data) < room
        sink.sendall(data)
        link.forwarded += len(data)
        return True


@contextlib.contextmanager
def fault_proxy(target_port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target_port)
    try:
        yield proxy
    finally:
        proxy.close()
