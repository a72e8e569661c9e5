"""`certcheck db upgrade`, `import`, `sync` and `demo-registry`: the database and the registry
in it."""

from __future__ import annotations

from pathlib import Path

import click

from certcheck.cli import commands
from certcheck.cli.environment import load_settings
from certcheck.cli.parser.common import CONTEXT, DATABASE, MIGRATED, run


@click.group(context_settings=CONTEXT)
def db() -> None:
    """Database maintenance."""


@db.command(epilog=DATABASE)
def upgrade() -> int:
    """Apply the migrations: creates the database or brings it to this version's schema."""
    return run(commands.db_upgrade(load_settings()))


@click.command("import", epilog=MIGRATED, short_help="Load a registry snapshot.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Accept a snapshot that would remove more than CERTCHECK_IMPORT_MAX_REMOVED_SHARE "
    "(default 10%) of the registry. Rows that cannot be read are never forced: over "
    "CERTCHECK_IMPORT_MAX_ERROR_SHARE (default 1%) the snapshot is refused.",
)
def import_(path: Path, force: bool) -> int:
    """Replace the registry with the snapshot at PATH (.csv, .jsonl, .ndjson; .gz too).

    All or nothing, in one transaction; prints the added, changed and removed counts.
    """
    return run(commands.import_file(load_settings(), path=path, force=force))


@click.command(epilog=MIGRATED)
def sync() -> int:
    """One incremental pull from the upstream feed.

    Needs CERTCHECK_UPSTREAM_URL (and CERTCHECK_UPSTREAM_TOKEN if the feed wants a bearer
    token). Prints the pages and counts applied.
    """
    return run(commands.sync(load_settings()))


@click.command("demo-registry", short_help="Write a synthetic registry snapshot.")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--count", default=10_000, type=click.IntRange(min=1), help="Certificates to write.")
def demo_registry(output: Path, count: int) -> int:
    """Write a synthetic registry snapshot to OUTPUT (.csv or .jsonl, .gz to compress it).

    Touches no database; load it with `certcheck import OUTPUT`.
    """
    return commands.demo_registry(output=output, count=count)
