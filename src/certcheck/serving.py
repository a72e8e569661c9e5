"""Running the app under uvicorn: logging, metrics across workers, graceful shutdown."""

from __future__ import annotations

import atexit
import contextlib
import errno
import gc
import importlib.machinery
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import uvicorn
from fastapi import FastAPI

from certcheck import checking, listening
from certcheck.app import create_app
from certcheck.config import Settings
from certcheck.observability.exposition import MULTIPROC_ENV
from certcheck.observability.logs import configure_logging

log = logging.getLogger(__name__)
_APP = "certcheck.serving:served_app"
SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005


def served_app() -> FastAPI:
    """The uvicorn factory: runs in every worker process, so each configures itself."""
    configure_logging()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        pid = os.getpid()
        atexit.register(lambda: multiprocess.mark_process_dead(pid))  # type: ignore[no-untyped-call]
    app = create_app(Settings(), handle_signals=True)
    # Out of the cyclic collector's sight from now on: the ~120,000 objects of the modules and
    # the app live as long as the process, and each full collection walked them all, holding
    # the loop for ~0.1-0.2 s during bulk batches (gc.freeze is meant for this; see its docs).
    gc.collect()
    gc.freeze()
    # The event loop shares the interpreter with threads that compute (check records made
    # ready for the database, the log writer, the SQLite driver). Waiting for one of them to
    # let go of the GIL took up to the default 5 ms each time the loop woke, several times a
    # request: the open-loop p99 went from under 10 ms to ~30 ms with records on.
    sys.setswitchinterval(SWITCH_INTERVAL)
    return app


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, bounded by a cgroup v2 CPU quota
    (a container limited to 2 CPUs on a 64-core host must not start 64 workers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = cgroup_cpu_quota()
    return max(1, min(cores or 1, quota) if quota is not None else cores or 1)


def cgroup_cpu_quota(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    # "max 100000" is no limit; "150000 100000" is 1.5 CPUs, rounded up to 2 workers.
    try:
        with open(path, encoding="ascii") as limits:
            quota, period = limits.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, -(-int(quota) // int(period)))


def bind(host: str, port: int) -> socket.socket:
    """The listening address, bound the way uvicorn binds it; raises OSError if it cannot be."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bind_failure(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use on {host}: stop what listens there or choose another --port"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


class QuiescingServer(uvicorn.Server):
    """Stops taking connections and accepts the queued ones before it closes the listener
    (listening.py): a client whose connect() succeeded is answered, never reset."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await listening.quiesce(sockets or [])
        await super().shutdown(sockets)


def uvicorn_options(settings: Settings, workers: int) -> dict[str, Any]:
    return {
        "factory": True,
        "workers": workers,
        "log_config": None,
        # Our request log has the line (observability/requests.py). With its own access log
        # merely disabled, uvicorn still made the line's client address and quoted path for
        # every answer before its logger said no; switched off, it makes neither.
        "access_log": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        # httptools with deadlines for headers and bodies, and a header size cap (http_protocol.py).
        "http": "certcheck.http_protocol:GuardedHttpToolsProtocol",
    }


def compiled(module: ModuleType) -> bool:
    """Whether `module` was loaded from a C extension (mypyc's, hatch_build.py), not its source."""
    return (module.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def request_path_build() -> str:
    """How this install runs the request path: an install without a C compiler falls back to
    plain Python (hatch_build.py), the same answers at a higher CPU cost a request."""
    return "compiled by mypyc" if compiled(checking) else "plain Python"


def run(listener: socket.socket, workers: int, settings: Settings) -> bool:
    """Serve on `listener`, bound by `bind` before migrations and the demo banner.

    False when the service could not start (the log says why)."""
    host, port = listener.getsockname()[:2]
    options = uvicorn_options(settings, workers)
    log.info("the request path runs %s", request_path_build())
    if workers == 1:
        # Handed over: no window for another process, and no app startup before the bind.
        log.info("listening on http://%s:%d", host, port)
        server = QuiescingServer(uvicorn.Config(_APP, host=host, port=port, **options))
        server.run(sockets=[listener])
        return server.started
    # uvicorn's worker supervisor binds the address itself, at once and before any worker
    # starts; it is not handed ours because its constructor differs between releases.
    # Its workers share the listener with it and do not quiesce it (a worker also stops when
    # the supervisor restarts it alone): connections queued when it exits are reset.
    listener.close()
    with _multiprocess_metrics():
        uvicorn.run(_APP, host=host, port=port, **options)  # exits non-zero if workers fail
    return True


@contextlib.contextmanager
def _multiprocess_metrics() -> Iterator[None]:
    """The directory each worker writes its samples to, which /metrics merges: the operator's
    PROMETHEUS_MULTIPROC_DIR, emptied first, or a temporary one, removed when the server stops
    (one was left in the temporary directory at every start)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        shutil.rmtree(given, ignore_errors=True)
        os.makedirs(given)
    # A new one as mkdtemp makes it (empty, private to this user): not removed and made again.
    directory = given or tempfile.mkdtemp(prefix="certcheck-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)
            del os.environ[MULTIPROC_ENV]
