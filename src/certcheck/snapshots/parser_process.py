"""A large snapshot's rows made into staging records in a second process (for SQLite).

Making the records is most of an import's Python work (reading the text, checking each field,
the digest: 6 s for a million rows). In the importing process on SQLite it competes for the
GIL with the thread in which SQLite inserts them; here it runs on another core, and the
importer only unpickles finished records (under a microsecond a row) and passes them on. A
serving process's event loop is spared that work too. (On PostgreSQL, which inserts in its
own process, pickling across cost more than it saved: staging.py reads in process there.)

The child reads the snapshot's open file as its stdin (the same open file: its offset is the
parent's, so a progress display that reads the offset keeps working) and writes frames to its
stdout: a 4-byte length, then a pickle of ("rows", [record or RowError, ...]), and at the end
("end",) or ("unusable", message) for a SnapshotError. It pickles only what records.py makes
(tuples of text, numbers, dates, None) and RowErrors, and the parent unpickles only frames of
its own child, read from a private pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import pickle  # nosec B403 # frames from our own child process only: see the module's text
import stat
import struct
import sys
from collections.abc import AsyncGenerator
from dataclasses import asdict
from datetime import date
from typing import Any, BinaryIO

from certcheck.snapshots.formats import SnapshotError, SnapshotFormat, SnapshotKind
from certcheck.snapshots.reader import ReadLimits, iter_snapshot
from certcheck.snapshots.records import Record
from certcheck.snapshots.rows import RowError

# Below this many bytes left to read, the child's start (about 0.2 s) costs more than it saves.
PROCESS_FROM_BYTES = 8 << 20
_ROWS_PER_FRAME = 1_000  # about 140 kB pickled: the importer's work on one stays near 1 ms
_HEADER = struct.Struct(">I")
# What the importer's side buffers ahead of the rows it has taken (asyncio pauses reading the
# pipe at twice this), so that the child seldom waits for it.
_READ_AHEAD = 1 << 20

Chunk = list[Record | RowError]


def worth_a_process(stream: BinaryIO) -> bool:
    """Whether `stream` is a regular file with enough left in it to parse in a second process."""
    try:
        fd = stream.fileno()
        info = os.fstat(fd)
        left = info.st_size - os.lseek(fd, 0, os.SEEK_CUR)
    except (AttributeError, OSError, ValueError):  # no file underneath (BytesIO), or closed
        return False
    return stat.S_ISREG(info.st_mode) and left >= PROCESS_FROM_BYTES


async def parsed_in_child(
    stream: BinaryIO,
    fmt: SnapshotFormat,
    *,
    today: date,
    limits: ReadLimits,
    postgres: bool,
) -> AsyncGenerator[Chunk, None]:
    """The records of the rest of `stream`, in file order, from a child process.

    Raises SnapshotError as reading in process would, where it would; the child is gone when
    this ends, however it ends (a failed or cancelled import kills it).
    """
    job = {
        "kind": fmt.kind.value,
        "gzip": fmt.gzip,
        "today": today.isoformat(),
        "limits": asdict(limits),
        "postgres": postgres,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        json.dumps(job),
        stdin=stream,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=_READ_AHEAD,
    )
    stdout, stderr = child.stdout, child.stderr
    assert stdout is not None  # nosec B101 # piped above
    assert stderr is not None  # nosec B101 # piped above
    complaints = asyncio.ensure_future(stderr.read())
    try:
        while True:
            frame = await _frame(stdout)
            if frame is None:
                await child.wait()
                raise RuntimeError(
                    f"the snapshot parser process stopped (exit status {child.returncode}): "
                    f"{(await complaints).decode(errors='replace').strip()[-2000:]}"
                )
            if frame[0] == "rows":
                yield frame[1]
                continue
            await child.wait()  # its last frame: it exits on its own
            if frame[0] == "end":
                return
            raise SnapshotError(frame[1])
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await child.wait()
        complaints.cancel()


async def _frame(pipe: asyncio.StreamReader) -> Any:
    try:
        (size,) = _HEADER.unpack(await pipe.readexactly(_HEADER.size))
        return pickle.loads(await pipe.readexactly(size))  # nosec B301 # our child's frames
    except asyncio.IncompleteReadError:
        return None


def main() -> None:
    """The child: reads the snapshot on stdin, writes frames on stdout (see the module's text)."""
    job = json.loads(sys.argv[1])
    fmt = SnapshotFormat(SnapshotKind(job["kind"]), gzip=job["gzip"])
    out = sys.stdout.buffer

    def send(frame: tuple[Any, ...]) -> None:
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_HEADER.pack(len(data)))
        out.write(data)

    with open(0, "rb", closefd=False) as stream:
        rows = iter_snapshot(
            stream,
            fmt,
            today=date.fromisoformat(job["today"]),
            limits=ReadLimits(**job["limits"]),
        )
        records = rows.records(postgres=job["postgres"])
        try:
            while chunk := list(itertools.islice(records, _ROWS_PER_FRAME)):
                send(("rows", chunk))
        except SnapshotError as exc:
            send(("unusable", str(exc)))
        else:
            send(("end",))
    out.flush()


if __name__ == "__main__":
    main()
