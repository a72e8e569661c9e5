"""What re-check jobs and watch uploads share at the HTTP edge: media type and encoding, the
caps from the settings, and refusing a declared length over the cap before reading a byte."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

from certcheck.config import Settings
from certcheck.errors import UploadRefused
from certcheck.jobs.framing import FramingLimits
from certcheck.jobs.records import UploadFormat
from certcheck.jobs.upload import UploadLimits, too_large

NDJSON = "application/x-ndjson"
NDJSON_TYPES: Mapping[str, UploadFormat] = {
    NDJSON: UploadFormat.NDJSON,
    "application/jsonl": UploadFormat.NDJSON,
}
_ENCODINGS = {"": False, "identity": False, "gzip": True, "x-gzip": True}


def upload_format(
    request: Request, accepted: Mapping[str, UploadFormat], names: str
) -> tuple[UploadFormat, bool]:
    """The body's format and whether it is gzipped; 415 for anything not `accepted`."""
    media, _, params = request.headers.get("content-type", "").partition(";")
    fmt = accepted.get(media.strip().lower())
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    if fmt is None or charset not in ("", "utf-8"):
        raise UploadRefused(f"send {names} (UTF-8)", code="UNSUPPORTED_MEDIA_TYPE", status=415)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise UploadRefused(
            f"Content-Encoding {encoding!r} is not supported: send gzip or nothing",
            code="UNSUPPORTED_CONTENT_ENCODING",
            status=415,
        )
    return fmt, _ENCODINGS[encoding]


def upload_limits(settings: Settings) -> tuple[UploadLimits, FramingLimits]:
    framing = FramingLimits(
        settings.job_chunk_lines,
        settings.job_max_lines,
        settings.job_max_line_bytes,
        settings.job_max_blank_lines,
    )
    upload = UploadLimits(
        settings.job_max_upload_bytes,
        settings.job_max_content_bytes,
        settings.job_spool_dir,
        lines=framing,  # refused while it streams in, not once spooled
    )
    return upload, framing


def refuse_declared_length(request: Request, most: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        raise too_large("the upload", most)
