"""The settings a command runs with, read from the environment, and what `serve --demo` prints."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from pydantic import ValidationError

from certcheck.config import DEFAULT_DATABASE_URL, Settings
from certcheck.snapshots.showcase import showcase_certificates
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Status


class SettingsError(ValueError):
    """A CERTCHECK_* variable is unusable; the message names it, on one line."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def use_demo_database() -> Settings:
    """`serve --demo` runs on the embedded default, whatever the environment says.

    Set in the environment, not only passed on: uvicorn's worker processes read it from there.
    """
    os.environ["CERTCHECK_DATABASE_URL"] = DEFAULT_DATABASE_URL
    return load_settings()


def demo_banner(key: str, host: str, port: int) -> str:
    """What `serve --demo` prints: its key and a ready curl line."""
    today = today_in_shanghai(datetime.now(UTC))
    valid = next(c for c in showcase_certificates(today) if c.status is Status.VALID)
    body = json.dumps(
        {
            "cert_no": valid.cert_no,
            "product_code": valid.product_code,
            "model": valid.models[0],
            "listing_id": "sku-1",
        }
    )
    return (
        "\ncertcheck demo: 10,000 synthetic certificates loaded.\n"
        f"  demo API key (all scopes): {key}\n"
        "  try:\n"
        f"    curl -s http://{host}:{port}/v1/verify -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d '{body}'\n"
        f"  API documentation: http://{host}:{port}/docs\n"
    )


def _one_line(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            message = f"CERTCHECK_{str(error['loc'][0]).upper()}: {message}"
        reasons.append(message)
    return "; ".join(reasons)
