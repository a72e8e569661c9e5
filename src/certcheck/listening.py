"""Closing a listening socket without resetting the connections waiting in its accept queue.

The kernel completes a TCP handshake before the server accepts the connection: the client's
connect() has returned and its request may be on the wire. Closing the listener then resets
every connection still queued, and the client meets a dead socket under its request (httpx:
ReadError, or RemoteProtocolError when the reset came before the request was written) where
it should have met a refused connection. So on shutdown a listener first stops completing
handshakes (a socket filter drops incoming SYNs: a new client retries its SYN a second later
and is then refused by the closed port), the server keeps accepting until the queue is empty,
and only then closes. Linux only; elsewhere the listener closes as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

_SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; not exported by the socket module
# Classic BPF, run by TCP on each segment with the TCP header at offset 0: drop a segment whose
# SYN flag is set, keep every other (the handshakes already under way still complete).
_DROP_SYN = (
    (0x30, 0, 0, 13),  # ldb [13]: the flags byte
    (0x45, 0, 1, 0x02),  # jset #SYN: next, else skip one
    (0x06, 0, 0, 0),  # ret #0: drop
    (0x06, 0, 0, 0xFFFF_FFFF),  # ret #-1: keep it whole
)
_TCPI_UNACKED = 24  # struct tcp_info: for a listener, the connections waiting to be accepted
# A handshake whose SYN came just before the filter completes one round trip later.
SETTLE = 0.1
QUEUE_WAIT = 2.0  # seconds at most to wait for the server to accept what is queued


def stop_new_connections(sock: socket.socket) -> bool:
    """Drop every new SYN sent to `sock`; False where this cannot be done."""
    program = b"".join(struct.pack("HBBI", *op) for op in _DROP_SYN)
    code = ctypes.create_string_buffer(program)
    fprog = struct.pack("HP", len(_DROP_SYN), ctypes.addressof(code))
    try:
        # The kernel copies the program: `code` need not outlive the call.
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def queued_connections(sock: socket.socket) -> int | None:
    """Connections the kernel has completed and `sock` has not accepted yet; None if unknown."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, 104)
    except OSError:
        return None
    if len(info) < _TCPI_UNACKED + 4:
        return None
    queued: int = struct.unpack_from("I", info, _TCPI_UNACKED)[0]
    return queued


async def quiesce(
    sockets: Sequence[socket.socket], *, settle: float = SETTLE, bound: float = QUEUE_WAIT
) -> None:
    """Stop `sockets` taking new connections, then let the running server accept every
    connection already queued on them (at most `bound` seconds), so closing them resets none."""
    stopped = [sock for sock in sockets if stop_new_connections(sock)]
    if not stopped:
        return
    await asyncio.sleep(settle)
    deadline = time.monotonic() + bound
    while True:
        waiting = sum(queued_connections(sock) or 0 for sock in stopped)
        if not waiting:
            return
        if time.monotonic() >= deadline:
            log.warning("closing the listener with %d connections not accepted", waiting)
            return
        await asyncio.sleep(0.01)
