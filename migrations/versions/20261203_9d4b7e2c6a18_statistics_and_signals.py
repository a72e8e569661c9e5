"""statistics and misuse signals

Revision ID: 9d4b7e2c6a18
Revises: 5c2e8f1a9b47
Create Date: 2026-12-03 09:00:00.000000

Aggregates folded in with every batch of check records (certcheck.evidence.aggregates), so
GET /v1/stats and GET /v1/signals never read the records themselves.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d4b7e2c6a18"
down_revision: str | None = "5c2e8f1a9b47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "check_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("product_code", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("checks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "platform",
            "product_code",
            "source",
            "reason",
            "decision",
            name=op.f("pk_check_counts"),
        ),
    )
    op.create_table(
        "check_members",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("member", sa.Text(), nullable=False),
        sa.Column("product_code", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "platform",
            "kind",
            "member",
            "product_code",
            "reason",
            "source",
            name=op.f("pk_check_members"),
        ),
    )
    op.create_table(
        "signal_counts",
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("cert_no", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("checks", sa.BigInteger(), nullable=False),
        sa.Column("merchants", sa.BigInteger(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "cert_no", "kind", name=op.f("pk_signal_counts")),
    )
    op.create_table(
        "signal_merchants",
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("cert_no", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "platform", "cert_no", "kind", "merchant_id", name=op.f("pk_signal_merchants")
        ),
    )


def downgrade() -> None:
    op.drop_table("signal_merchants")
    op.drop_table("signal_counts")
    op.drop_table("check_members")
    op.drop_table("check_counts")
