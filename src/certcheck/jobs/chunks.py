"""A chunk of a job's input as one row of recheck_inputs, and the compression of stored blobs.

Records are JSON objects (an NDJSON line as sent, a CSV row turned into one) joined by "\n":
neither can hold a raw newline. Line numbers are stored as runs, since they rarely skip.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

# Level 1: result lines shrink about 40 times at over 500 MB/s, and zlib lets go of the GIL.
_LEVEL = 1


@dataclass(frozen=True, slots=True)
class InputChunk:
    index: int
    lines: list[int]  # the upload's line number of each record
    records: list[bytes]  # one JSON object per record; b"" where `errors` names the record
    errors: dict[int, str]  # record index -> why that line could not be read

    def __len__(self) -> int:
        return len(self.lines)


def compress(data: bytes) -> bytes:
    return zlib.compress(data, _LEVEL)


def decompress(data: bytes) -> bytes:
    return zlib.decompress(data)


def pack(chunk: InputChunk) -> dict[str, Any]:
    """The recheck_inputs values of `chunk` (without job_id)."""
    return {
        "chunk": chunk.index,
        "line_runs": json.dumps(line_runs(chunk.lines), separators=(",", ":")),
        "records": compress(b"\n".join(chunk.records)),
        "errors": json.dumps(chunk.errors, ensure_ascii=False) if chunk.errors else None,
    }


def unpack(index: int, line_runs_json: str, records: bytes, errors: str | None) -> InputChunk:
    lines = expand_runs(json.loads(line_runs_json))
    payloads = decompress(records).split(b"\n")
    if len(payloads) != len(lines):
        raise ValueError(f"chunk {index}: {len(payloads)} records for {len(lines)} line numbers")
    failed = {int(at): why for at, why in json.loads(errors).items()} if errors else {}
    return InputChunk(index=index, lines=lines, records=payloads, errors=failed)


def line_runs(lines: list[int]) -> list[list[int]]:
    """[[first, count], ...] for ascending numbers: [1, 2, 3, 7, 8] -> [[1, 3], [7, 2]]."""
    runs: list[list[int]] = []
    for line in lines:
        if runs and runs[-1][0] + runs[-1][1] == line:
            runs[-1][1] += 1
        else:
            runs.append([line, 1])
    return runs


def expand_runs(runs: list[list[int]]) -> list[int]:
    return [line for first, count in runs for line in range(first, first + count)]
