"""Which exceptions mean "the database cannot be reached now" rather than "the code is wrong".

The first answer 503 with Retry-After (the caller should try again); the second stay 500s and
are logged with their traceback, so a bug is never hidden as an outage.
"""

from __future__ import annotations

import errno
import socket

import asyncpg
from sqlalchemy import exc as sa

# OSErrors that say the network or the server is away. A plain OSError without errno is what
# asyncio raises when every address of a host refused ("Multiple exceptions: ...").
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EADDRNOTAVAIL,
        None,
    }
)
# SQLSTATE classes: connection exception, insufficient resources (too many connections, disk
# full), operator intervention (shutdown, cannot connect now, statement timeout), system error.
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})


def is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _NETWORK_ERRNOS
    # Raised by asyncpg itself where a statement runs on the driver, not through SQLAlchemy.
    if isinstance(exc, asyncpg.InterfaceError):
        return True  # a connection closed or broken under the call
    if isinstance(exc, asyncpg.PostgresError):
        return _sqlstate_class(exc) in _OUTAGE_SQLSTATE_CLASSES
    if isinstance(exc, (sa.DisconnectionError, sa.TimeoutError)):
        return True  # the pool could not give a live connection in time
    if not isinstance(exc, sa.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, (sa.OperationalError, sa.InterfaceError)):
        return True
    # asyncpg's server errors reach us as a plain DBAPIError: judge them by their SQLSTATE.
    return _sqlstate_class(exc) in _OUTAGE_SQLSTATE_CLASSES


def is_refused_value(exc: BaseException) -> bool:
    """PostgreSQL refused a value it cannot store (SQLSTATE class 22, data exception: a NUL
    character in text, a string too long): the same rows fail again however often they are
    sent, so they must not be held back with the rest."""
    return _sqlstate_class(exc) == "22"


def _sqlstate_class(exc: BaseException) -> str | None:
    """The class (first two characters) of a server error's SQLSTATE, raised by asyncpg or
    wrapped by SQLAlchemy; None for anything else."""
    if isinstance(exc, sa.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
    elif isinstance(exc, asyncpg.PostgresError):
        sqlstate = exc.sqlstate
    else:
        return None
    return sqlstate[:2] if isinstance(sqlstate, str) else None
