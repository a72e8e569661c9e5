"""re-check jobs and sync state

Revision ID: a41c9e7b2d35
Revises: f07d47c8d3f0
Create Date: 2026-11-23 11:52:07.253665
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a41c9e7b2d35"
down_revision: str | None = "f07d47c8d3f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recheck_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("allow_count", sa.Integer(), nullable=False),
        sa.Column("block_count", sa.Integer(), nullable=False),
        sa.Column("review_count", sa.Integer(), nullable=False),
        sa.Column("invalid_lines", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=256), nullable=True),
        sa.Column("body_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("registry_generation", sa.BigInteger(), nullable=True),
        sa.Column("registry_as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recheck_jobs")),
        sa.UniqueConstraint("platform", "idempotency_key", name=op.f("uq_recheck_jobs_platform")),
    )
    with op.batch_alter_table("recheck_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recheck_jobs_platform"), ["platform", "status"], unique=False
        )

    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cursor", sa.String(length=64), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "recheck_chunks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["recheck_jobs.id"],
            name=op.f("fk_recheck_chunks_job_id_recheck_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recheck_chunks")),
        sa.UniqueConstraint("job_id", "chunk", name=op.f("uq_recheck_chunks_job_id")),
    )
    with op.batch_alter_table("recheck_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recheck_chunks_state"), ["state", "id"], unique=False)

    op.create_table(
        "recheck_inputs",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("line_runs", sa.Text(), nullable=False),
        sa.Column("records", sa.LargeBinary(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["recheck_jobs.id"],
            name=op.f("fk_recheck_inputs_job_id_recheck_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "chunk", name=op.f("pk_recheck_inputs")),
    )
    op.create_table(
        "recheck_results",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("decisions", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["recheck_jobs.id"],
            name=op.f("fk_recheck_results_job_id_recheck_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "chunk", name=op.f("pk_recheck_results")),
    )


def downgrade() -> None:
    op.drop_table("recheck_results")
    op.drop_table("recheck_inputs")
    with op.batch_alter_table("recheck_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recheck_chunks_state"))

    op.drop_table("recheck_chunks")
    op.drop_table("sync_state")
    with op.batch_alter_table("recheck_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recheck_jobs_platform"))

    op.drop_table("recheck_jobs")
