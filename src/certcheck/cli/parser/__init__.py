"""The `certcheck` command line: the root group, with every command and group registered on it
here, in one place. One module per command group holds its options and help texts
(service, registry, keys, evidence, checking); cli/commands.py and cli/evidence.py do the work.

main.py runs them and reports failures; a command returns its exit status.
"""

from __future__ import annotations

import click

from certcheck import __version__
from certcheck.cli.parser import checking, evidence, keys, registry, service
from certcheck.cli.parser.common import CONTEXT
from certcheck.observability.logs import configure_logging


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="certcheck")
@click.pass_context
def certcheck(ctx: click.Context) -> None:
    """Check China Compulsory Certification (3C) certificate numbers for e-commerce listings.

    Settings come from CERTCHECK_* environment variables (and a .env file in the current
    directory); README.md lists them. Start with `certcheck serve --demo`.
    """
    # A server's lines go to log collectors: JSON, like its workers'. People read the rest.
    configure_logging("INFO", json_lines=ctx.invoked_subcommand in ("serve", "fake-upstream"))


# `--help` lists them by name whatever the order here.
for _command in (
    service.serve,
    registry.db,
    registry.import_,
    registry.sync,
    service.fake_upstream,
    keys.keys,
    evidence.checks,
    evidence.receipt,
    checking.verify,
    checking.recheck,
    service.openapi,
    registry.demo_registry,
):
    certcheck.add_command(_command)
