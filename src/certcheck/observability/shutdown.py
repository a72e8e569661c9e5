"""Graceful shutdown: on SIGTERM, fail readiness first, keep serving while balancers notice,
then let uvicorn stop accepting, finish in-flight requests and run the lifespan shutdown.

While draining, every answer carries `Connection: close` (api/limits.py), so a keep-alive
client moves on between two requests rather than meet a connection closed under its request;
connections still idle at the end get a moment to bring a request (http_protocol.py), and
the listener takes no new connection but accepts the queued ones before it closes, so none is
reset (listening.py; one process per `serve` only)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from types import FrameType

from certcheck.observability.logs import write_directly

log = logging.getLogger(__name__)


@dataclass
class Lifecycle:
    draining: bool = False


def drain_on_sigterm(lifecycle: Lifecycle, drain_seconds: float) -> None:
    """Wrap uvicorn's SIGTERM handler (installed before our lifespan starts) with a drain."""
    original = signal.getsignal(signal.SIGTERM)
    if not callable(original):
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if lifecycle.draining:
            original(signum, frame)  # a second SIGTERM means now
            return
        lifecycle.draining = True
        log.info("SIGTERM: readiness off, stopping in %.1f s", drain_seconds)
        loop.call_soon_threadsafe(write_directly)  # the lines up to the very end are kept
        loop.call_soon_threadsafe(loop.call_later, drain_seconds, original, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
