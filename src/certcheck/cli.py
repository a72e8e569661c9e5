"""The `certcheck` command: serve, migrate, import, keys, verify."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from certcheck import __version__
from certcheck.config import DEFAULT_DATABASE_URL, Settings
from certcheck.errors import CertcheckError
from certcheck.keys import Scope
from certcheck.observability.logs import configure_logging

log = logging.getLogger("certcheck")

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int] | int]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("INFO", json_lines=False)
    handler: Command = args.handler
    try:
        outcome = handler(args)
        if not isinstance(outcome, int):
            outcome = asyncio.run(outcome)
    except CertcheckError as exc:
        return _fail(f"{exc.code}: {exc.detail}")
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")
    return outcome


def _fail(reason: str) -> int:
    print(f"certcheck: {reason.splitlines()[0] if reason else 'failed'}", file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    from certcheck import commands

    parser = argparse.ArgumentParser(prog="certcheck", description=__doc__)
    parser.add_argument("--version", action="version", version=f"certcheck {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP service (applies migrations first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--demo",
        action="store_true",
        help=f"use the embedded database ({DEFAULT_DATABASE_URL}) with a demo registry and key",
    )
    serve.set_defaults(handler=commands.serve)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(required=True)
    db.add_parser("upgrade", help="apply the migrations").set_defaults(handler=commands.db_upgrade)

    imp = sub.add_parser("import", help="load a registry snapshot (.csv, .jsonl, .gz)")
    imp.add_argument("path")
    imp.add_argument("--force", action="store_true", help="accept a snapshot that removes many")
    imp.set_defaults(handler=commands.import_file)

    sync = sub.add_parser("sync", help="one incremental pull from the upstream feed")
    sync.set_defaults(handler=commands.sync)
    _add_fake_upstream(sub, commands.fake_upstream)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(required=True)
    create = keys.add_parser("create", help="create a key; prints it once on stdout")
    create.add_argument("--platform", required=True)
    create.add_argument("--scope", action="append", required=True, choices=[s.value for s in Scope])
    create.set_defaults(handler=commands.keys_create)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=commands.keys_revoke)

    verify = sub.add_parser("verify", help="check one number against the configured database")
    verify.add_argument("cert_no")
    verify.add_argument("--product-code")
    verify.add_argument("--model")
    verify.add_argument("--manufacturer")
    verify.set_defaults(handler=commands.verify)

    recheck = sub.add_parser(
        "recheck", help="re-check a file of listings (NDJSON or CSV, .gz too), a result per line"
    )
    recheck.add_argument("input", help="one verify request per line, or CSV with a header row")
    recheck.add_argument("-o", "--output", help="the result lines' file (default: stdout)")
    recheck.add_argument("--format", choices=["ndjson", "csv"], help="if the name does not tell")
    recheck.set_defaults(handler=commands.recheck)

    openapi = sub.add_parser("openapi", help="print the OpenAPI document (YAML)")
    openapi.set_defaults(handler=commands.openapi)

    demo = sub.add_parser("demo-registry", help="write a synthetic registry snapshot")
    demo.add_argument("output")
    demo.add_argument("--count", type=int, default=10_000)
    demo.set_defaults(handler=commands.demo_registry)
    return parser


def _add_fake_upstream(sub: Any, handler: Command) -> None:
    from certcheck import fake_upstream

    fake = sub.add_parser(
        "fake-upstream",
        help="serve a snapshot as a fake upstream feed, with scripted faults (trials, tests)",
        description=fake_upstream.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fake.add_argument("--snapshot", required=True, help="a snapshot file (.csv, .jsonl, .gz)")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8900)
    fake.add_argument("--fault", action="append", default=[], help="KIND[:ARG][@WHEN], repeatable")
    fake.add_argument("--token", help="answer 401 unless this bearer token is sent")
    fake.set_defaults(handler=handler)


def settings_from_env() -> Settings:
    return Settings()


def use_demo_database() -> None:
    """`serve --demo` runs on the embedded default, whatever the environment says."""
    os.environ["CERTCHECK_DATABASE_URL"] = DEFAULT_DATABASE_URL
