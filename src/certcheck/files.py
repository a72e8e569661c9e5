"""Files a command writes whole or not at all: a snapshot, a re-check's results."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def whole_file(target: Path) -> Iterator[BinaryIO]:
    """`target` written aside and renamed into place when the block ends, removed if it
    raises: a reader finds the file as it was or the whole new one, never a part.

    Each writer has a partial file of its own. With one shared name, two commands writing the
    same target at once wrote into one file, and the first to finish renamed it from under
    the other, which then failed; now each leaves a whole file and the last to finish wins."""
    partial = target.with_name(f"{target.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        with partial.open("xb") as out:
            yield out
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
