"""GET /metrics: prometheus-client's text format, merged across workers in multiprocess mode."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

router = APIRouter(tags=["operations"])

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics() -> Response:
    """Prometheus text exposition format; no label carries an unbounded value."""
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
