"""`certcheck checks` and `receipt`: check records and the receipts that prove them."""

from __future__ import annotations

from pathlib import Path

import click

from certcheck.cli import evidence
from certcheck.cli.environment import load_settings
from certcheck.cli.parser.common import CONTEXT, MIGRATED, run


@click.group(context_settings=CONTEXT)
def checks() -> None:
    """Check records: what was asked, what was decided, kept for the retention period."""


@checks.command(epilog=MIGRATED)
def purge() -> int:
    """Forget check records older than CERTCHECK_CHECK_RETENTION_DAYS (default 400).

    PostgreSQL drops whole day partitions; SQLite deletes the rows.
    """
    return run(evidence.checks_purge(load_settings()))


@click.group(context_settings=CONTEXT)
def receipt() -> None:
    """Signed receipts of checks (GET /v1/checks/{check_id}/receipt)."""


@receipt.command("verify", epilog=MIGRATED)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--jwks",
    metavar="FILE_OR_URL",
    help="The key set: a file, or a URL such as https://HOST/.well-known/jwks.json; "
    "unset: the keys in the database.",
)
def receipt_verify(file: Path, jwks: str | None) -> int:
    """Verify the receipt in FILE offline; prints the check it proves.

    Exit status 0 when the signature verifies with a key of the set, 1 otherwise (one line
    says why).
    """
    return evidence.receipt_verify(load_settings(), path=file, jwks=jwks)
