"""The `certcheck` commands, their options and help texts; commands.py does the work.

main.py runs them and reports failures; a command returns its exit status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from certcheck import __version__
from certcheck.cli import commands, evidence
from certcheck.cli.environment import load_settings, use_demo_database
from certcheck.keys import Scope
from certcheck.observability.logs import configure_logging
from certcheck.sync import fake_upstream
from certcheck.verification.records import Listing

_CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}
_DATABASE = (
    "Database: the one CERTCHECK_DATABASE_URL names; unset, ./certcheck.db in the current "
    "directory (sqlite+aiosqlite:///./certcheck.db)."
)
_MIGRATED = f"{_DATABASE} Run `certcheck db upgrade` on a new database first."


def _run(outcome: Coroutine[Any, Any, int] | int) -> int:
    return outcome if isinstance(outcome, int) else asyncio.run(outcome)


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, prog_name="certcheck")
@click.pass_context
def certcheck(ctx: click.Context) -> None:
    """Check China Compulsory Certification (3C) certificate numbers for e-commerce listings.

    Settings come from CERTCHECK_* environment variables (and a .env file in the current
    directory); README.md lists them. Start with `certcheck serve --demo`.
    """
    # A server's lines go to log collectors: JSON, like its workers'. People read the rest.
    configure_logging("INFO", json_lines=ctx.invoked_subcommand in ("serve", "fake-upstream"))


@certcheck.command(epilog=_DATABASE)
@click.option(
    "--host",
    default="127.0.0.1",
    envvar="CERTCHECK_HOST",
    show_envvar=True,
    help="Address to listen on; 0.0.0.0 listens on every interface.",
)
@click.option(
    "--port",
    default=8000,
    type=click.IntRange(1, 65535),
    envvar="CERTCHECK_PORT",
    show_envvar=True,
    help="TCP port to listen on; checked before anything else happens.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    envvar="CERTCHECK_WORKERS",
    show_envvar=True,
    default=None,
    show_default="one per CPU core available",
    help="Processes sharing the port, each with its own cache and job workers. A process "
    "uses one core at most (the GIL), so the default gives each core one: the cores this "
    "process may run on (CPU affinity), fewer under a cgroup CPU quota (a container's limit).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Use ./certcheck.db whatever CERTCHECK_DATABASE_URL says, load 10,000 synthetic "
    "certificates, create a key with every scope and print it with a ready curl line.",
)
def serve(host: str, port: int, workers: int | None, demo: bool) -> int:
    """Run the HTTP service; applies pending migrations first.

    Logs are JSON lines on stderr. SIGTERM drains: /readyz fails for
    CERTCHECK_SHUTDOWN_DRAIN seconds, then requests in flight get CERTCHECK_SHUTDOWN_TIMEOUT.
    """
    settings = use_demo_database() if demo else load_settings()
    return commands.serve(settings, host=host, port=port, workers=workers, demo=demo)


@certcheck.group(context_settings=_CONTEXT)
def db() -> None:
    """Database maintenance."""


@db.command(epilog=_DATABASE)
def upgrade() -> int:
    """Apply the migrations: creates the database or brings it to this version's schema."""
    return _run(commands.db_upgrade(load_settings()))


@certcheck.command("import", epilog=_MIGRATED, short_help="Load a registry snapshot.")
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
    return _run(commands.import_file(load_settings(), path=path, force=force))


@certcheck.command(epilog=_MIGRATED)
def sync() -> int:
    """One incremental pull from the upstream feed.

    Needs CERTCHECK_UPSTREAM_URL (and CERTCHECK_UPSTREAM_TOKEN if the feed wants a bearer
    token). Prints the pages and counts applied.
    """
    return _run(commands.sync(load_settings()))


@certcheck.command(
    "fake-upstream",
    help=fake_upstream.__doc__,
    short_help="Serve a snapshot as a fake feed.",
    epilog="Touches no database. Point a certcheck's CERTCHECK_UPSTREAM_URL at it.",
)
@click.option(
    "--snapshot",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A snapshot file (.csv, .jsonl, .gz) to serve as the feed.",
)
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option("--port", default=8900, type=click.IntRange(1, 65535), help="TCP port.")
@click.option(
    "--fault", multiple=True, help="KIND[:ARG][@WHEN], as above; repeat for several faults."
)
@click.option("--token", help="Answer 401 unless this bearer token is sent; unset: no check.")
def fake_upstream_(
    snapshot: Path, host: str, port: int, fault: tuple[str, ...], token: str | None
) -> int:
    return commands.fake_upstream(
        snapshot=snapshot, host=host, port=port, fault=list(fault), token=token
    )


@certcheck.group(context_settings=_CONTEXT)
def keys() -> None:
    """API keys: shown once when created, stored only as a hash."""


@keys.command(epilog=_MIGRATED)
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
    return _run(commands.keys_create(load_settings(), platform=platform, scopes=list(scopes)))


@keys.command(epilog=_MIGRATED)
@click.argument("key_id")
def revoke(key_id: str) -> int:
    """Revoke the key KEY_ID: the id `keys create` reported, not the key."""
    return _run(commands.keys_revoke(load_settings(), key_id=key_id))


@keys.group(context_settings=_CONTEXT)
def signing() -> None:
    """The Ed25519 keys that sign receipts, kept in the database's signing_keys table."""


@signing.command(epilog=_MIGRATED)
def rotate() -> int:
    """Make a new signing key current; older public keys stay in /.well-known/jwks.json while
    receipts they signed are within CERTCHECK_CHECK_RETENTION_DAYS."""
    return _run(evidence.signing_rotate(load_settings()))


@certcheck.group(context_settings=_CONTEXT)
def checks() -> None:
    """Check records: what was asked, what was decided, kept for the retention period."""


@checks.command(epilog=_MIGRATED)
def purge() -> int:
    """Forget check records older than CERTCHECK_CHECK_RETENTION_DAYS (default 400).

    PostgreSQL drops whole day partitions; SQLite deletes the rows.
    """
    return _run(evidence.checks_purge(load_settings()))


@certcheck.group(context_settings=_CONTEXT)
def receipt() -> None:
    """Signed receipts of checks (GET /v1/checks/{check_id}/receipt)."""


@receipt.command("verify", epilog=_MIGRATED)
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


@certcheck.command(epilog=_MIGRATED, short_help="Check one certificate number.")
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
    return _run(commands.verify(load_settings(), listing))


@certcheck.command(epilog=_MIGRATED, short_help="Re-check a file of listings locally.")
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
    return _run(commands.recheck(load_settings(), source=input_, output=output, fmt=fmt))


@certcheck.command()
def openapi() -> int:
    """Print the OpenAPI document (YAML). Touches no database."""
    return commands.openapi(load_settings())


@certcheck.command("demo-registry", short_help="Write a synthetic registry snapshot.")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--count", default=10_000, type=click.IntRange(min=1), help="Certificates to write.")
def demo_registry(output: Path, count: int) -> int:
    """Write a synthetic registry snapshot to OUTPUT (.csv or .jsonl, .gz to compress it).

    Touches no database; load it with `certcheck import OUTPUT`.
    """
    return commands.demo_registry(output=output, count=count)
