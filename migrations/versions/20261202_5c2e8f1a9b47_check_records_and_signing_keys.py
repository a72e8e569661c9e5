"""check records and signing keys

Revision ID: 5c2e8f1a9b47
Revises: c5e2a9d1b7f4
Create Date: 2026-11-24 09:00:00.000000

On PostgreSQL `check_records` is partitioned by day of `checked_at` (declarative partitioning);
its partitions live in the schema `check_record_days`, made ahead of time by the service
(certcheck.evidence.partitions), so that `certcheck checks purge` drops whole days.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "5c2e8f1a9b47"
down_revision: str | None = "c5e2a9d1b7f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONS_SCHEMA = "check_record_days"


def _columns() -> list[Any]:
    return [
        sa.Column("check_id", sa.String(length=26), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("cert_no", sa.String(length=16), nullable=True),
        sa.Column("product_code", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("manufacturer", sa.Text(), nullable=True),
        sa.Column("listing_id", sa.Text(), nullable=True),
        sa.Column("merchant_id", sa.Text(), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=True),
        sa.Column("registry_as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("check_id", "checked_at", name=op.f("pk_check_records")),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTITIONS_SCHEMA}")
        op.create_table("check_records", *_columns(), postgresql_partition_by="RANGE (checked_at)")
    else:
        op.create_table("check_records", *_columns())
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("public_x", sa.String(length=64), nullable=False),
        sa.Column("current_from", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("check_records")  # its partitions go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {PARTITIONS_SCHEMA} CASCADE")
