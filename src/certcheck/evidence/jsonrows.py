"""PostgreSQL: many rows in one statement, sent as one JSON text and unpacked by the server.

asyncpg encodes every value of a statement's parameters (or of COPY's rows) in Python-facing
code on the event loop, ~0.5-1 µs a value: the ~100,000 values a 5,000-line job chunk adds to
the aggregates held the loop ~150 ms and were most of the chunk's cost in the serving process.
Here Python makes one JSON text per table with the json module's C encoder (in slices, in a
worker thread), and the server, on its own core, reads the rows out of it with
jsonb_array_elements. Dates and times go as ISO 8601 text, cast back by the server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

_RUN = 1_000  # rows per json.dumps call: the GIL can pass between two


def rows_from(casts: Sequence[str | None], param: int = 1) -> str:
    """`SELECT <one expression per column> FROM <the rows of JSON parameter `param`>`, each
    row a JSON array; `casts` are the columns' types (None: text) and `e` the row."""
    values = ", ".join(
        f"e->>{at}" if cast is None else f"(e->>{at})::{cast}" for at, cast in enumerate(casts)
    )
    # `casts` are the callers' constants: nothing in the statement comes from a request.
    return f"SELECT {values} FROM jsonb_array_elements(${param}::jsonb) AS e"  # nosec B608


def encode(rows: Sequence[Sequence[Any]]) -> str:
    """`rows` as one JSON array of arrays. CPU only: call it in a worker thread."""
    default = _Texts()
    parts = (
        json.dumps(
            rows[at : at + _RUN], ensure_ascii=False, separators=(",", ":"), default=default
        )[1:-1]
        for at in range(0, len(rows), _RUN)
    )
    return f"[{','.join(parts)}]"


class _Texts:
    """json.dumps' `default`: a date or time as ISO 8601, each distinct object made once (the
    rows of a batch share a few: every check of a job's chunk has the same `checked_at`)."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[Any, str]] = {}  # by id, each kept with its object

    def __call__(self, value: Any) -> str:
        made = self._made.get(id(value))
        if made is None:
            if not isinstance(value, date):  # a datetime is a date too
                raise TypeError(f"{type(value).__name__} is not for a JSON row: {value!r}")
            made = self._made[id(value)] = (value, value.isoformat())
        return made[1]
