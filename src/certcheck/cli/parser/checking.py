"""`certcheck verify` and `recheck`: checks run locally against the database."""

from __future__ import annotations

from pathlib import Path

import click

from certcheck.cli import commands
from certcheck.cli.environment import load_settings
from certcheck.cli.parser.common import MIGRATED, run
from certcheck.verification.records import Listing


@click.command(epilog=MIGRATED, short_help="Check one certificate number.")
@click.argument("cert_no")
@click.option("--product-code", help="The listing's product code; unset: not compared.")
@click.option("--model", help="The listing's model; unset: not compared.")
@click.option("--manufacturer", help="The listing's manufacturer; unset: not compared.")
def verify(
    cert_no: str, product_code: str | None, model: str | None, manufacturer: str | None
) -> int:
    """Check CERT_NO once against the database; prints the verify response as JSON.

    \b
    Exit status: 0 allow, 3 block, 4 review
                 1 no decision (the command failed), 2 wrong command line
    """
    listing = Listing(
        cert_no=cert_no, product_code=product_code, model=model, manufacturer=manufacturer
    )
    return run(commands.verify(load_settings(), listing))


@click.command(epilog=MIGRATED, short_help="Re-check a file of listings locally.")
@click.argument("input_", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="File for the result lines, written whole or not at all; unset: stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "csv"]),
    help="The input's format; unset: told by its name (.ndjson, .jsonl, .csv; .gz too).",
)
def recheck(input_: Path, output: str | None, fmt: str | None) -> int:
    """Re-check a file of listings locally: one verify request per NDJSON line, or CSV with
    a header row. Writes one result line per listing, in order; no job is stored."""
    return run(commands.recheck(load_settings(), source=input_, output=output, fmt=fmt))
