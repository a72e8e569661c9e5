"""One chunk, start to finish: parse each line, check them all at once, render each result.

The Checker does what it does for the HTTP API (normalise, one bulk registry lookup, decide);
the wire format of a line (parse and render) belongs to api/ and comes in as a LineCodec.
A worker takes a chunk in three steps: parse, look up (which waits for the database) and work
(decide, render); the first and last only need the CPU.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, TypeVar

from certcheck.checking import Check, Checker, LookedUp, malformed
from certcheck.evidence.records import Requested
from certcheck.jobs.chunks import InputChunk
from certcheck.jobs.records import LETTER
from certcheck.observability.metrics import DECISIONS
from certcheck.registry.store import RegistryInfo
from certcheck.verification.records import Listing, Verdict


class Parsed(NamedTuple):
    listing: Listing
    listing_id: str | None
    merchant_id: str | None = None  # kept only in the line's check record


class LineCodec(Protocol):
    fields: frozenset[str]  # the members a line may have (a CSV header's names)

    def parse(self, record: bytes) -> Parsed | str:
        """The listing in one JSON object, or why it is not a verify request."""

    def render(self, check: Check, listing_id: str | None, line: int, error: str | None) -> bytes:
        """One result line (without its newline)."""


@dataclass(frozen=True, slots=True)
class ChunkResult:
    body: bytes  # the result lines, each ending in a newline
    decisions: str  # one letter per line (records.LETTER)
    counts: Counter[Verdict]
    invalid: int
    registry: RegistryInfo
    # Each line's check and request, for its check record (written with the chunk's results).
    checked: tuple[tuple[Check, Requested], ...] = ()


async def process_chunk(chunk: InputChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
    """Raises only what Checker.check raises: RegistryUnavailable or RegistryStale."""
    parsed = await parse_chunk(chunk, checker, codec)
    return await work_chunk(await look_up_chunk(parsed, checker, codec), checker, codec)


@dataclass(frozen=True, slots=True)
class ParsedChunk:
    """A chunk's lines parsed (parse_chunk)."""

    chunk: InputChunk
    parsed: list[Parsed | str]


@dataclass(frozen=True, slots=True)
class ReadChunk:
    """A chunk's lines parsed and their certificates read (look_up_chunk)."""

    chunk: InputChunk
    parsed: list[Parsed | str]
    registry: RegistryInfo
    looked_up: LookedUp


async def parse_chunk(chunk: InputChunk, checker: Checker, codec: LineCodec) -> ParsedChunk:
    """The chunk's lines parsed: CPU only."""
    # Parsing and rendering are CPU work: in a thread, the event loop keeps answering requests.
    return ParsedChunk(chunk, await asyncio.to_thread(_parse, chunk, codec))


async def look_up_chunk(parsed: ParsedChunk, checker: Checker, codec: LineCodec) -> ReadChunk:
    """The certificates of a parsed chunk's numbers: mostly waiting for the database. Raises
    only what Checker.look_up raises."""
    registry = checker.store.ensure_usable()
    # A job reads much of a registry once: caching it would only evict the real-time checks'.
    listings = [p.listing for p in parsed.parsed if not isinstance(p, str)]
    looked_up = await checker.look_up(listings, remember=False)
    return ReadChunk(parsed.chunk, parsed.parsed, registry, looked_up)


async def work_chunk(read: ReadChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
    """Decide the lines of a chunk look_up_chunk read, and render their results: CPU only."""
    checks = await checker.decide_all(read.looked_up)
    return await asyncio.to_thread(_render, read.chunk, read.parsed, checks, read.registry, codec)


_In = TypeVar("_In")
_Out = TypeVar("_Out")
Step = Callable[[_In, Checker, LineCodec], Awaitable[_Out]]


@dataclass(frozen=True, slots=True)
class ChunkSteps:
    """What the workers call on each chunk: `parse` (parse_chunk), `look_up` (look_up_chunk),
    `work` (work_chunk). Tests put in steps that fail on purpose."""

    parse: Step[InputChunk, ParsedChunk] = parse_chunk
    look_up: Step[ParsedChunk, ReadChunk] = look_up_chunk
    work: Step[ReadChunk, ChunkResult] = work_chunk


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
    answers = iter(checks)
    lines: list[bytes] = []
    letters: list[str] = []
    checked: list[tuple[Check, Requested]] = []
    for line, item in zip(chunk.lines, parsed, strict=True):
        if isinstance(item, str):
            check = malformed(None, item, registry.as_of, now)
            lines.append(codec.render(check, None, line, item))
            checked.append((check, _NOTHING))
        else:
            check = next(answers)
            lines.append(codec.render(check, item.listing_id, line, None))
            checked.append((check, _requested(item)))
        letters.append(LETTER[check.decision.verdict])
    invalid = len(chunk) - len(checks)
    if invalid:
        DECISIONS.labels(decision="block", reason="MALFORMED").inc(invalid)
    counts = Counter({verdict: letters.count(letter) for verdict, letter in LETTER.items()})
    lines.append(b"")
    return ChunkResult(
        b"\n".join(lines), "".join(letters), counts, invalid, registry, tuple(checked)
    )


_NOTHING = Requested()  # a line that could not be read: nothing of it is known


def _requested(item: Parsed) -> Requested:
    return Requested.of(item.listing, item.listing_id, item.merchant_id)
