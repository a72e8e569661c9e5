"""The console script: runs the command line and turns every failure into one line on stderr.

Exit statuses: 0 done, 1 the command failed (one line on stderr says why), 2 the command
line was wrong; `certcheck verify` adds 3 (block) and 4 (review).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from certcheck.cli.parser import certcheck
from certcheck.errors import CertcheckError


def main(argv: Sequence[str] | None = None) -> int:
    """The console script; returns the exit status."""
    try:
        args = list(argv) if argv is not None else None
        status = certcheck.main(args, prog_name="certcheck", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a bare `certcheck` or `certcheck keys`: the help is the answer
        return exc.exit_code
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "certcheck"
        return _fail(f"{exc.format_message()} (see `{where} --help`)", exc.exit_code)
    except click.ClickException as exc:  # a reason to stop: no traceback helps a user here
        return _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        return _fail("interrupted")
    except CertcheckError as exc:
        return _fail(f"{exc.code}: {exc.detail}")
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    return status if isinstance(status, int) else 0


def _fail(reason: str, status: int = 1) -> int:
    print(f"certcheck: {reason.splitlines()[0] if reason else 'failed'}", file=sys.stderr)
    return status
