"""is_database_outage: an outage answers 503, a bug stays a 500."""

from __future__ import annotations

import errno

import asyncpg
import pytest
from sqlalchemy import exc as sa

from certcheck.db.outage import is_database_outage


class _Orig(Exception):
    """A driver error as asyncpg's adapter presents it: with its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def dbapi(cls: type[sa.DBAPIError], orig: Exception, *, invalidated: bool = False) -> Exception:
    return cls("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True),
        (OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."), True),
        (OSError(errno.EHOSTUNREACH, "no route to host"), True),
        (TimeoutError(), True),
        (sa.TimeoutError("QueuePool limit reached"), True),
        (sa.DisconnectionError("gone"), True),
        (dbapi(sa.OperationalError, Exception("unable to open database file")), True),
        (dbapi(sa.InterfaceError, Exception("connection is closed")), True),
        (dbapi(sa.DBAPIError, Exception("terminating"), invalidated=True), True),
        (dbapi(sa.DBAPIError, _Orig("57P01")), True),  # admin shutdown
        (dbapi(sa.DBAPIError, _Orig("57P03")), True),  # cannot connect now
        (dbapi(sa.DBAPIError, _Orig("53300")), True),  # too many connections
        (dbapi(sa.DBAPIError, _Orig("08006")), True),  # connection failure
        (dbapi(sa.IntegrityError, _Orig("23505")), False),
        (dbapi(sa.ProgrammingError, _Orig("42P01")), False),
        (dbapi(sa.DataError, _Orig("22021")), False),
        (dbapi(sa.DBAPIError, _Orig("22P02")), False),
        (dbapi(sa.DBAPIError, Exception("no sqlstate")), False),
        # Raised by asyncpg itself, where a look-up runs on the driver (registry/store.py).
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"), True),
        (asyncpg.AdminShutdownError("terminating connection"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (asyncpg.UndefinedTableError("relation does not exist"), False),
        (asyncpg.DataError("invalid input"), False),
        (FileNotFoundError(errno.ENOENT, "missing"), False),
        (PermissionError(errno.EACCES, "denied"), False),
        (sa.NoResultFound(), False),
        (KeyError("bug"), False),
        (ValueError("bug"), False),
    ],
    ids=repr,
)
def test_is_database_outage(error: Exception, outage: bool) -> None:
    assert is_database_outage(error) is outage
