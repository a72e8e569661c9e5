"""check members as listing and merchant pairs

One membership row per check's (listing, merchant) pair instead of one for its listing and one
for its merchant: a re-check job's line, which names both, adds one row instead of two
(bench/README.md). `sides` says which of the two the check named ('L', 'M' or 'B', both); the
side it did not name is ''. The text of the key is compared byte by byte on PostgreSQL
(collation "C"), as the staged rows it is folded from are. Each old row becomes a pair with one
side, so the distinct counts stay what they were.

Revision ID: 7c1e4b9a2f60
Revises: 3f8a61c2d9e5
Create Date: 2026-12-06 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1e4b9a2f60"
down_revision: str | None = "3f8a61c2d9e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = ("day", "platform", "listing", "merchant", "sides", "product_code", "reason", "source")


def _bytewise(type_: sa.String) -> sa.types.TypeEngine[str]:
    return type_.with_variant(type(type_)(type_.length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "check_pairs",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("platform", _bytewise(sa.String(length=128)), nullable=False),
        sa.Column("listing", _bytewise(sa.Text()), nullable=False),
        sa.Column("merchant", _bytewise(sa.Text()), nullable=False),
        sa.Column("sides", sa.String(length=1), nullable=False),
        sa.Column("product_code", _bytewise(sa.Text()), nullable=False),
        sa.Column("reason", _bytewise(sa.String(length=32)), nullable=False),
        sa.Column("source", _bytewise(sa.String(length=8)), nullable=False),
        sa.PrimaryKeyConstraint(*_KEYS, name=op.f("pk_check_pairs")),
    )
    op.execute(
        "INSERT INTO check_pairs (day, platform, listing, merchant, sides, product_code, reason, "
        "source) SELECT day, platform, CASE WHEN kind = 'L' THEN member ELSE '' END, "
        "CASE WHEN kind = 'M' THEN member ELSE '' END, kind, product_code, reason, source "
        "FROM check_members"
    )
    op.drop_table("check_members")


def downgrade() -> None:
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
            *("day", "platform", "kind", "member", "product_code", "reason", "source"),
            name=op.f("pk_check_members"),
        ),
    )
    op.execute(
        "INSERT INTO check_members (day, platform, kind, member, product_code, reason, source) "
        "SELECT DISTINCT day, platform, 'L', listing, product_code, reason, source "
        "FROM check_pairs WHERE sides <> 'M' "
        "UNION SELECT DISTINCT day, platform, 'M', merchant, product_code, reason, source "
        "FROM check_pairs WHERE sides <> 'L'"
    )
    op.drop_table("check_pairs")
