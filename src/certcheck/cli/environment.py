"""The settings a command runs with, read from the environment, and what `serve --demo` prints."""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
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


def announce_when_ready(banner: str, host: str, port: int, *, within: float = 300.0) -> None:
    """Print `banner` from a thread once the service answers /readyz, not before.

    The address is bound before the app starts, but nothing accepts on it until uvicorn
    listens and a worker has loaded the app: a curl line printed earlier and run at once was
    refused. If the service never gets ready, its own log lines say why; nothing is printed.
    """
    import httpx  # here: every other command reads its settings through this module

    url = f"http://{_reachable(host)}:{port}/readyz"

    def wait_then_print() -> None:
        deadline = time.monotonic() + within
        # No proxy from the environment: this is the machine's own service.
        with httpx.Client(trust_env=False, timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get(url).status_code == 200:
                        print(banner, flush=True)
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)

    threading.Thread(target=wait_then_print, name="demo-banner", daemon=True).start()


def _reachable(host: str) -> str:
    """The address a client on this machine reaches `host` by (a wildcard means loopback)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a name, such as localhost
    if address.is_unspecified:
        return "[::1]" if address.version == 6 else "127.0.0.1"
    return f"[{host}]" if address.version == 6 else host


def _one_line(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            message = f"CERTCHECK_{str(error['loc'][0]).upper()}: {message}"
        reasons.append(message)
    return "; ".join(reasons)
