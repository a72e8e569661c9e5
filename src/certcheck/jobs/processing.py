"""One chunk, start to finish: parse each line, check them all at once, render each result.

The Checker does what it does for the HTTP API (normalise, one bulk registry lookup, decide);
the wire format of a line (parse and render) belongs to api/ and comes in as a LineCodec.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from certcheck.checking import Check, Checker, malformed
from certcheck.evidence.records import Asked, Requested, ShownOnce
from certcheck.jobs.chunks import InputChunk
from certcheck.jobs.records import LETTER
from certcheck.observability.metrics import DECISIONS
from certcheck.registry.store import RegistryInfo
from certcheck.verification.records import ListingClaims, Verdict


class Parsed(ListingClaims, Asked, Protocol):
    """A line that is a verify request: the listing's claims with the ids beside it (the
    request itself, decided and recorded as it came, as a batch's items are)."""


# One result line (without its newline) of a check, its listing id, line number and error.
LineRenderer = Callable[[Check, str | None, int, str | None], bytes]


class LineCodec(Protocol):
    fields: frozenset[str]  # the members a line may have (a CSV header's names)

    def parse(self, record: bytes) -> Parsed | str:
        """The listing in one JSON object, or why it is not a verify request."""

    def renderer(self, shown: ShownOnce) -> LineRenderer:
        """What writes one chunk's result lines, their certificates' JSON by `shown`."""


@dataclass(frozen=True, slots=True)
class ChunkResult:
    body: bytes  # the result lines, each ending in a newline
    decisions: str  # one letter per line (records.LETTER)
    counts: Counter[Verdict]
    invalid: int
    registry: RegistryInfo
    # Each line's check and request, for its check record (written with the chunk's results).
    checked: tuple[tuple[Check, Asked], ...] = ()
    # The certificates' JSON the result lines hold, for the records to hold the same.
    shown: ShownOnce = field(default_factory=lambda: ShownOnce(keep=False))


# What the workers call on each chunk: process_chunk, or a stand-in that fails on purpose in tests.
ChunkProcessor = Callable[[InputChunk, Checker, LineCodec], Awaitable[ChunkResult]]


async def process_chunk(chunk: InputChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
    """Raises only what Checker.check raises: RegistryUnavailable or RegistryStale."""
    # Parsing and rendering are CPU work: in a thread, the event loop keeps answering requests.
    parsed = await asyncio.to_thread(_parse, chunk, codec)
    registry = checker.store.ensure_usable()
    # A job reads much of a registry once: caching it would only evict the real-time checks'.
    listings = [p for p in parsed if not isinstance(p, str)]
    checks = await checker.check(listings, remember=False)
    return await asyncio.to_thread(_render, chunk, parsed, checks, registry, codec)


def _parse(chunk: InputChunk, codec: LineCodec) -> list[Parsed | str]:
    errors = chunk.errors
    return [
        errors[at] if at in errors else codec.parse(record)
        for at, record in enumerate(chunk.records)
    ]


def _render(
    chunk: InputChunk,
    parsed: list[Parsed | str],
    checks: list[Check],
    registry: RegistryInfo,
    codec: LineCodec,
) -> ChunkResult:
    now = datetime.now(UTC)
    # A job reads most certificates once: their JSON is not kept for the real-time checks'.
    shown = ShownOnce(keep=False)
    render = codec.renderer(shown)
    answers = iter(checks)
    lines: list[bytes] = []
    letters: list[str] = []
    checked: list[tuple[Check, Asked]] = []
    for line, item in zip(chunk.lines, parsed, strict=True):
        if isinstance(item, str):
            check = malformed(None, item, registry.as_of, now)
            lines.append(render(check, None, line, item))
            checked.append((check, _NOTHING))
        else:
            check = next(answers)
            lines.append(render(check, item.listing_id, line, None))
            checked.append((check, item))
        letters.append(LETTER[check.decision.verdict])
    invalid = len(chunk) - len(checks)
    if invalid:
        DECISIONS.labels(decision="block", reason="MALFORMED").inc(invalid)
    counts = Counter({verdict: letters.count(letter) for verdict, letter in LETTER.items()})
    lines.append(b"")
    return ChunkResult(
        b"\n".join(lines), "".join(letters), counts, invalid, registry, tuple(checked), shown
    )


_NOTHING = Requested()  # a line that could not be read: nothing of it is known
