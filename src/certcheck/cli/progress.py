"""Progress of long CLI work on stderr: a rich bar on a terminal, a plain line now and then if not.

stdout stays for results (`recheck` without -o writes there), so progress never goes to it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

# Update(completed, total=None): `completed` of `total` units done so far.
Update = Callable[..., None]


@contextlib.contextmanager
def progress(
    label: str, unit: str, *, total: int | None = None, every: float = 10.0
) -> Iterator[Update]:
    """Yields `update(completed, total=None)`; `every` spaces the plain lines (seconds)."""
    if sys.stderr.isatty():
        with _bar(label, unit, total) as update:
            yield update
    else:
        yield _PlainLines(label, unit, total, every, sys.stderr).update


@contextlib.contextmanager
def _bar(label: str, unit: str, total: int | None) -> Iterator[Update]:
    # Imported for a terminal only: rich and pygments cost a command 50 ms at start, which a
    # scripted `certcheck import` (stderr not a terminal) does not need.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total is None:
        columns += [TextColumn(f"{{task.completed:,.0f}} {unit}"), TimeElapsedColumn()]
    else:
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        columns += [count, TaskProgressColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def update(completed: int, total: int | None = None) -> None:
            bar.update(task, completed=completed, total=total)

        yield update


class _PlainLines:
    """A line every `every` seconds at most, so a log collector is not flooded."""

    def __init__(self, label: str, unit: str, total: int | None, every: float, out: TextIO):
        self.label, self.unit, self.total, self.every, self.out = label, unit, total, every, out
        self.last = time.monotonic()

    def update(self, completed: int, total: int | None = None) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        total = total or self.total
        share = f" ({completed / total:.0%})" if total else ""
        print(f"certcheck: {self.label}: {completed:,} {self.unit}{share}", file=self.out)
