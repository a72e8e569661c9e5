"""Snapshot imports (snapshots/): what a snapshot may change, and what its upload may cost."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator


class ImportSettings(BaseModel):
    import_max_removed_share: float = Field(default=0.10, ge=0, le=1)
    import_max_error_share: float = Field(default=0.01, ge=0, le=1)
    # The national registry is a few million rows, well under 1 GiB as CSV: twice that is room.
    import_max_upload_bytes: int = Field(
        default=2 << 30, ge=1, description="bytes of a snapshot upload as sent"
    )
    # Gunzipped as it arrives and spooled, like a re-check upload: a gzip bomb stops here.
    import_max_content_bytes: int = Field(
        default=4 << 30, ge=1, description="bytes of a snapshot upload after gunzip"
    )
    # The longest valid row (2000 models of 256 characters) is about 520,000 characters.
    import_max_line_chars: int = Field(
        default=4 << 20, ge=1_024, description="characters of one snapshot line"
    )
    import_max_blank_lines: int = Field(
        default=100_000, ge=0, description="blank lines a snapshot may hold"
    )
    # A full national snapshot imports in a few minutes; half an hour means something is wrong,
    # and the writer lock it holds keeps every sync out meanwhile.
    import_timeout: float = Field(
        default=1_800.0, gt=0, description="seconds a snapshot upload's import may take in all"
    )

    @model_validator(mode="after")
    def _refuse_unusable_imports(self) -> Self:
        if self.import_max_upload_bytes > self.import_max_content_bytes:
            # As for jobs: an upload sent without gzip is as long as its content.
            raise ValueError(
                "CERTCHECK_IMPORT_MAX_UPLOAD_BYTES exceeds CERTCHECK_IMPORT_MAX_CONTENT_BYTES"
            )
        return self
