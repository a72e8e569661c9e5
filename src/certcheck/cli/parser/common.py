"""What the command modules share: Click's context settings, the epilogs, running a command."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}
DATABASE = (
    "Database: the one CERTCHECK_DATABASE_URL names; unset, ./certcheck.db in the current "
    "directory (sqlite+aiosqlite:///./certcheck.db)."
)
MIGRATED = f"{DATABASE} Run `certcheck db upgrade` on a new database first."


def run(outcome: Coroutine[Any, Any, int] | int) -> int:
    return outcome if isinstance(outcome, int) else asyncio.run(outcome)
