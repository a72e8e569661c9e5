"""Request limits (hardening): api/limits.py, api/strict_json.py, http_protocol.py."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field


class RequestLimitSettings(BaseModel):
    max_body_bytes: int = Field(
        default=16 << 20, ge=1_024, description="bytes of a JSON body (a full batch fits)"
    )
    verify_max_body_bytes: int = Field(
        default=64 << 10, ge=1_024, description="bytes of a POST /v1/verify body"
    )
    max_in_flight: int = Field(
        default_factory=lambda: max(64, 32 * (os.cpu_count() or 1)),
        ge=1,
        description="requests one process works on at once (default 32 per CPU, at least 64); "
        "more get 503 OVERLOADED",
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds a request's line and headers may take to arrive"
    )
    max_header_bytes: int = Field(
        default=32 << 10, ge=1_024, description="bytes of a request's line and headers"
    )
    body_timeout: float = Field(
        default=10.0, gt=0, description="seconds of grace before body_min_rate is enforced"
    )
    body_min_rate: int = Field(
        default=8 << 10, ge=1, description="bytes per second a request body must average"
    )
