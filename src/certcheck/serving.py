"""Running the app under uvicorn: logging, metrics across workers, graceful shutdown."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from fastapi import FastAPI

from certcheck.app import create_app
from certcheck.config import Settings
from certcheck.observability.exposition import MULTIPROC_ENV
from certcheck.observability.logs import configure_logging


def served_app() -> FastAPI:
    """The uvicorn factory: runs in every worker process, so each configures itself."""
    configure_logging()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        pid = os.getpid()
        atexit.register(lambda: multiprocess.mark_process_dead(pid))  # type: ignore[no-untyped-call]
    return create_app(Settings(), handle_signals=True)


def run(host: str, port: int, workers: int, settings: Settings) -> None:
    import uvicorn

    if workers > 1:
        _prepare_multiprocess_metrics()
    uvicorn.run(
        "certcheck.serving:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        # httptools with deadlines for headers and bodies, and a header size cap (http_protocol.py).
        http="certcheck.http_protocol:GuardedHttpToolsProtocol",
    )


def _prepare_multiprocess_metrics() -> None:
    # Each worker writes its samples here; /metrics merges them. Start empty every time.
    directory = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="certcheck-metrics-")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    os.environ[MULTIPROC_ENV] = directory
