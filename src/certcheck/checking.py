"""One check, end to end: normalise each number, look them all up at once, decide each listing.

Shared by the HTTP endpoints, the CLI and the re-check jobs, so all of them decide alike.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from certcheck.ids import new_ulid, new_ulids
from certcheck.observability.metrics import decisions
from certcheck.registry.store import RegistryInfo, RegistryStore
from certcheck.verification.catalogue import Catalogue
from certcheck.verification.decision import MALFORMED_DECISION, decide
from certcheck.verification.numbers import (
    ShanghaiDay,
    is_absent,
    malformed_detail,
    normalise_cert_no,
)
from certcheck.verification.records import (
    Certificate,
    Decision,
    Listing,
    ListingClaims,
    Reason,
)

if TYPE_CHECKING:
    from prometheus_client import Counter as MetricCounter

# A 10,000-item batch takes ~0.5 s of CPU on an idle core, and single checks on the same worker
# must not wait for all of it. A check needs several turns of the event loop (read, handler,
# answer), and each turn the batch gets a slice first: so slices are short in time, not in
# items (250 items took ~13 ms idle and twice that beside the check-record writer, and a check
# waited ~5 of them). SLICE is also the most items between two turns, and the batch's answer
# is encoded in pieces of this many results.
SLICE = 250
SLICE_SECONDS = 0.002
_STEP = 16  # items between two looks at the clock
_today = ShanghaiDay().of
_T = TypeVar("_T")
_R = TypeVar("_R")


async def in_slices(items: Sequence[_T], work: Callable[[_T], _R]) -> list[_R]:
    """`[work(item) for item in items]`, letting other requests run every SLICE items or
    SLICE_SECONDS, whichever comes first."""
    if len(items) <= _STEP:  # one check's listing: nothing to slice
        return [work(item) for item in items]
    done: list[_R] = []
    began, since = time.perf_counter(), 0
    for start in range(0, len(items), _STEP):
        done.extend(work(item) for item in items[start : start + _STEP])
        since += _STEP
        if since >= SLICE or time.perf_counter() - began >= SLICE_SECONDS:
            await asyncio.sleep(0)
            began, since = time.perf_counter(), 0
    return done


# A tuple rather than a frozen dataclass: as immutable, and made in a third of the time (a
# frozen dataclass sets each field through object.__setattr__), once for every check.
class Check(NamedTuple):
    check_id: str
    cert_no: str | None
    decision: Decision
    certificate: Certificate | None
    registry_as_of: datetime
    checked_at: datetime
    # MALFORMED answers only: the number as it was sent, and why it is not one.
    given: str | None = None
    detail: str | None = None


def malformed(
    given: str | None,
    detail: str,
    registry_as_of: datetime,
    now: datetime,
    check_id: str | None = None,
) -> Check:
    """The one way a MALFORMED answer is made: for a number that cannot be a certificate
    number, or a job line that is not a verify request (`given` None, `detail` says why)."""
    check_id = new_ulid(now) if check_id is None else check_id
    return Check(check_id, None, MALFORMED_DECISION, None, registry_as_of, now, given, detail)


def _number(listing: ListingClaims, today: date) -> str | None:
    raw = listing.cert_no
    return None if raw is None or is_absent(raw) else normalise_cert_no(raw, today)


@functools.cache
def _counted(reason: Reason) -> MetricCounter:
    """The decisions counter a check whose first reason is `reason` counts under."""
    return decisions(reason.verdict.value, reason.value)


class Checker:
    def __init__(self, store: RegistryStore, catalogue: Catalogue) -> None:
        self.store = store
        self.catalogue = catalogue

    async def check(
        self, listings: Sequence[ListingClaims], *, remember: bool = True
    ) -> list[Check]:
        """Decisions for `listings`, in order; raises only when the registry cannot be consulted.
        `remember=False`: certificates read for them are not cached (RegistryStore.lookup)."""
        now = datetime.now(UTC)
        today = _today(now)
        info = self.store.ensure_usable(now)
        numbers = await in_slices(listings, lambda item: _number(item, today))
        wanted = {no for no in numbers if no is not None}
        found = await self.store.lookup(wanted, now=now, remember=remember) if wanted else {}
        # Ids taken as one run: what one at a time would make, at a tenth of the cost.
        ids = iter(new_ulids(len(listings), now))
        checks = await in_slices(
            list(zip(listings, numbers, strict=True)),
            lambda pair: self._one(
                next(ids), *pair, found.get(pair[1]) if pair[1] else None, info, now, today
            ),
        )
        for reasons, count in Counter([c.decision.reasons for c in checks]).items():
            _counted(reasons[0]).inc(count)
        return checks

    async def check_one(self, listing: ListingClaims) -> Check:
        """`check([listing])[0]`, without what many listings need (slices, a set of numbers, a
        run of ids, a tally): a verify request's check, where those cost a third of it."""
        now = datetime.now(UTC)
        today = _today(now)
        info = self.store.ensure_usable(now)
        number = _number(listing, today)
        found = None if number is None else await self.store.lookup_one(number)
        check = self._one(new_ulid(now), listing, number, found, info, now, today)
        _counted(check.decision.reasons[0]).inc()
        return check

    def _one(
        self,
        check_id: str,
        item: ListingClaims,
        cert_no: str | None,
        certificate: Certificate | None,
        info: RegistryInfo,
        now: datetime,
        today: date,
    ) -> Check:
        raw = item.cert_no
        if cert_no is None and raw is not None and not is_absent(raw):
            return malformed(raw, malformed_detail(raw, today), info.as_of, now, check_id)
        # Most numbers arrive in their normal form: then the listing is the one to decide.
        listing = (
            item
            if raw == cert_no
            else Listing(cert_no, item.product_code, item.model, item.manufacturer)
        )
        decision = decide(listing, certificate, today=today, catalogue=self.catalogue)
        return Check(check_id, cert_no, decision, certificate, info.as_of, now)
