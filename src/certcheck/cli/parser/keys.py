"""`certcheck keys`: API keys, and the signing keys of receipts."""

from __future__ import annotations

import click

from certcheck.cli import commands, evidence
from certcheck.cli.environment import load_settings
from certcheck.cli.parser.common import CONTEXT, MIGRATED, run
from certcheck.keys import Scope


@click.group(context_settings=CONTEXT)
def keys() -> None:
    """API keys: shown once when created, stored only as a hash."""


@keys.command(epilog=MIGRATED)
@click.option("--platform", required=True, help="The platform (shop) the key belongs to.")
@click.option(
    "--scope",
    "scopes",
    required=True,
    multiple=True,
    type=click.Choice([s.value for s in Scope]),
    help="A scope the key grants; repeat it for several: --scope verify --scope batch.",
)
def create(platform: str, scopes: tuple[str, ...]) -> int:
    """Create an API key; prints the key alone on stdout."""
    return run(commands.keys_create(load_settings(), platform=platform, scopes=list(scopes)))


@keys.command(epilog=MIGRATED)
@click.argument("key_id")
def revoke(key_id: str) -> int:
    """Revoke the key KEY_ID: the id `keys create` reported, not the key."""
    return run(commands.keys_revoke(load_settings(), key_id=key_id))


@keys.group(context_settings=CONTEXT)
def signing() -> None:
    """The Ed25519 keys that sign receipts, kept in the database's signing_keys table."""


@signing.command(epilog=MIGRATED)
def rotate() -> int:
    """Make a new signing key current; older public keys stay in /.well-known/jwks.json while
    receipts they signed are within CERTCHECK_CHECK_RETENTION_DAYS."""
    return run(evidence.signing_rotate(load_settings()))
