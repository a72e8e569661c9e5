"""What `certcheck checks purge`, `certcheck keys signing rotate` and `certcheck receipt verify`
do; parser/ parses their arguments.

The evidence modules are imported in the commands that use them: signing brings the JOSE and
cryptography libraries (0.1 s), which every other command (an import of a million rows
among them) would otherwise load at start."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from certcheck.cli.commands import require_readable
from certcheck.cli.database import open_database
from certcheck.config import Settings


async def checks_purge(settings: Settings) -> int:
    from certcheck.evidence import store

    async with open_database(settings) as engine:
        done = await store.purge(engine, settings.check_retention_days)
    print(f"{done}: records older than {settings.check_retention_days} days are gone")
    return 0


async def signing_rotate(settings: Settings) -> int:
    from certcheck.evidence.signing import CACHE_SECONDS, SigningKeys

    async with open_database(settings) as engine:
        kid = await SigningKeys(engine, retention_days=settings.check_retention_days).rotate()
    print(f"key {kid} is current; running services sign with it within {CACHE_SECONDS:g} s")
    return 0


def receipt_verify(settings: Settings, *, path: Path, jwks: str | None) -> int:
    from certcheck.evidence import receipts

    require_readable(path)
    token = path.read_text(encoding="ascii", errors="replace")
    key_set = asyncio.run(_key_set(settings, jwks))
    try:
        verified = receipts.verify(token, key_set)
    except receipts.ReceiptInvalid as exc:
        raise click.ClickException(f"{path}: invalid receipt: {exc}") from None
    record = verified.record
    print(
        f"valid: check {record.get('check_id')} of {record.get('platform')} at "
        f"{record.get('checked_at')}, {record.get('decision')} ({record.get('reason')}), "
        f"signed by key {verified.kid}"
    )
    return 0


async def _key_set(settings: Settings, jwks: str | None) -> Any:
    """The JWK Set from a URL, a file, or (neither given) the database's signing keys."""
    import httpx  # here, as the evidence modules: only this command fetches anything

    from certcheck.evidence.signing import SigningKeys

    try:
        if jwks is None:
            async with open_database(settings) as engine:
                keys = SigningKeys(engine, retention_days=settings.check_retention_days)
                return await keys.key_set()
        if jwks.startswith(("https://", "http://")):
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.get(jwks)
                response.raise_for_status()
                return response.json()
        text = await asyncio.to_thread(Path(jwks).read_text, encoding="utf-8")
        return json.loads(text)
    except (httpx.HTTPError, ValueError) as exc:
        raise click.ClickException(f"{jwks}: no key set there ({exc})") from None
