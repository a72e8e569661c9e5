"""One sync run's limits, result and state, and the checks each page passes before it is
applied: its `as_of` never goes backwards, few enough bad items, no page token seen before,
items no older than those already applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from certcheck.sync.feedpage import FeedPage
from certcheck.sync.patch import Totals

_REPORTED_ERRORS = 100


@dataclass(frozen=True, slots=True)
class SyncLimits:
    max_pages: int = 1_000
    run_timeout: float = 600.0
    max_bad_share: float = 0.01
    overlap: timedelta = timedelta(seconds=10)


@dataclass
class SyncResult:
    outcome: str = "running"
    pages: int = 0
    totals: Totals = field(default_factory=Totals)
    generation: int | None = None
    cursor: datetime | None = None
    as_of: datetime | None = None
    errors: list[str] = field(default_factory=list)  # the first bad items, "page P item I: ..."
    error: str | None = None


class RunStop(Exception):
    """The run ends here; what it applied stays."""

    def __init__(self, reason: str, *, refused: bool = False, rewind: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused
        self.rewind = rewind  # the cursor may have passed items not yet seen: put it back


@dataclass
class RunState:
    run_id: int
    start_cursor: datetime | None
    result: SyncResult
    newest: datetime | None = None  # the newest updated_at applied in this run
    seen: set[str] = field(default_factory=set)


def check_page(page: FeedPage, run: RunState, limits: SyncLimits) -> None:
    """Raises RunStop when `page` cannot be applied after what the run has applied."""
    number = run.result.pages + 1
    previous = run.result.as_of
    if previous is not None and page.as_of < previous:
        raise RunStop(
            f"page {number}: as_of went backwards, from {previous.isoformat()} "
            f"to {page.as_of.isoformat()}"
        )
    _report(run.result, number, page)
    if page.bad_share > limits.max_bad_share:
        first = page.errors[0]
        raise RunStop(
            f"page {number}: {len(page.errors)} of {len(page.items) + len(page.errors)} "
            f"items are unreadable, over the limit of {limits.max_bad_share:.0%}; "
            f"first: item {first.line}: {first.message}",
            refused=True,
        )
    if page.next_token is not None and page.next_token in run.seen:
        raise RunStop(f"page {number}: the next page token was already used: the feed loops")
    _check_order(page, run, number)


def _check_order(page: FeedPage, run: RunState, number: int) -> None:
    # The cursor moves past each page only because later pages hold nothing older.
    oldest = min((item.updated_at for item in page.items), default=None)
    if run.newest is not None and oldest is not None and oldest < run.newest:
        raise RunStop(
            f"page {number}: items are not in updated_at order, so the cursor cannot be "
            "trusted; it is put back to where this run started",
            rewind=True,
        )


def _report(result: SyncResult, number: int, page: FeedPage) -> None:
    for error in page.errors[: max(0, _REPORTED_ERRORS - len(result.errors))]:
        result.errors.append(f"page {number} item {error.line}: {error.message}")
