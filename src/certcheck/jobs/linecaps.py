"""The line caps of an upload, applied to its content block by block as it streams in.

Framing reads the spooled content afterwards; this gate makes sure that what it will read is
within the caps (lines, line length, blank lines) and refuses an upload as soon as it is not,
so a flood of lines costs no more than the bytes read until then. Every step is C-level
(split, count, map) rather than a Python loop per line.
"""

from __future__ import annotations

from certcheck.errors import UploadRefused
from certcheck.jobs.framing import FramingLimits, line_too_long, too_many_lines

_BOM = b"\xef\xbb\xbf"


class LineGate:
    """Counts the lines of content fed to it in order; raises UploadRefused over a cap."""

    def __init__(self, limits: FramingLimits, *, header: bool) -> None:
        self._limits = limits
        self._most_lines = limits.max_lines + (1 if header else 0)  # a CSV's header line
        self._physical = 0  # lines ended so far
        self._lines = 0  # of them, lines with something on them
        self._blank = 0
        self._tail = 0  # bytes of the line not ended yet
        self._tail_blank = True
        self._started = False

    def feed(self, block: bytes) -> None:
        if not self._started and block:
            self._started = True
            block = block.removeprefix(_BOM)
        parts = block.split(b"\n")
        last = parts.pop()
        if parts:
            self._ended(parts)
            self._tail, self._tail_blank = 0, True
        self._tail += len(last)
        self._tail_blank = self._tail_blank and (not last or last.isspace())
        if self._tail > self._limits.max_line_bytes:
            raise line_too_long(self._physical + 1, self._limits.max_line_bytes)

    def finish(self) -> None:
        """The content has ended: its last line counts even without a newline."""
        if not self._tail_blank:
            self._lines += 1
            self._check()

    def _ended(self, parts: list[bytes]) -> None:
        """`parts` end a line each; the first continues the line carried from the last block."""
        first = parts[0]
        first_blank = self._tail_blank and (not first or first.isspace())
        blank = parts.count(b"") + sum(map(bytes.isspace, parts))
        blank += first_blank - (not first or first.isspace())
        longest = max(self._tail + len(first), max(map(len, parts)))
        if longest > self._limits.max_line_bytes:
            self._refuse_long(parts)
        self._physical += len(parts)
        self._blank += blank
        self._lines += len(parts) - blank
        self._check()

    def _refuse_long(self, parts: list[bytes]) -> None:
        most = self._limits.max_line_bytes
        lengths = [self._tail + len(parts[0]), *map(len, parts[1:])]
        at = next(i for i, length in enumerate(lengths) if length > most)
        raise line_too_long(self._physical + at + 1, most)

    def _check(self) -> None:
        if self._lines > self._most_lines:
            raise too_many_lines(self._limits.max_lines)
        if self._blank > self._limits.max_blank_lines:
            raise UploadRefused(
                f"the upload has more than {self._limits.max_blank_lines} blank lines",
                code="TOO_MANY_LINES",
                status=413,
            )
