"""`certcheck serve`, `fake-upstream` and `openapi`: the HTTP service and what stands in for
its upstream."""

from __future__ import annotations

from pathlib import Path

import click

from certcheck.cli import commands
from certcheck.cli.environment import load_settings, use_demo_database
from certcheck.cli.parser.common import DATABASE


@click.command(epilog=DATABASE)
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


@click.command(
    "fake-upstream",
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
def fake_upstream(
    snapshot: Path, host: str, port: int, fault: tuple[str, ...], token: str | None
) -> int:
    """Serve a snapshot file as the upstream feed, with scripted faults.

    For trying the sync out and for end-to-end tests. Items are served raw (unvalidated, as
    an upstream might send them), oldest `updated_at` first; a row without `updated_at` gets
    one a millisecond apart, ending at the file's modification time.

    \b
    Faults are KIND[:ARG][@WHEN]:
      500, 503, 429 ...  answer with that status (429 and 503 carry
                         Retry-After: ARG, default 1)
      trickle[:S]        send the body one byte every S seconds (default 0.2)
      truncate           send half of the body, then close the connection
      invalid-json       a body that is not JSON
      bad-status[:N]     the first N items (default all) carry an unknown status
      loop               next_page_token repeats this page's own token
      as-of-back         as_of a day before the real one

    WHEN is N (the Nth request), pageN (every request for page N) or absent (every
    request).
    """
    return commands.fake_upstream(
        snapshot=snapshot, host=host, port=port, fault=list(fault), token=token
    )


@click.command()
def openapi() -> int:
    """Print the OpenAPI document (YAML). Touches no database."""
    return commands.openapi(load_settings())
