"""watched listings and events

Revision ID: c5e2a9d1b7f4
Revises: a41c9e7b2d35
Create Date: 2026-12-02 03:33:03.181527
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5e2a9d1b7f4"
down_revision: str | None = "a41c9e7b2d35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "watch_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.Column("expiry_day", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_watch_cursors")),
    )
    op.create_table(
        "watch_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("listing_id", sa.String(length=256), nullable=False),
        sa.Column("cert_no", sa.String(length=16), nullable=True),
        sa.Column("old_decision", sa.String(length=8), nullable=False),
        sa.Column("new_decision", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("check_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_watch_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_watch_events_event_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("watch_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_watch_events_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_watch_events_platform"), ["platform", "seq"], unique=False
        )

    op.create_table(
        "watched_listings",
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("listing_id", sa.String(length=256), nullable=False),
        sa.Column("cert_no", sa.String(length=16), nullable=True),
        sa.Column("cert_no_sent", sa.String(length=64), nullable=False),
        sa.Column("product_code", sa.String(length=256), nullable=True),
        sa.Column("model", sa.String(length=256), nullable=True),
        sa.Column("manufacturer", sa.String(length=256), nullable=True),
        sa.Column("merchant_id", sa.String(length=256), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("check_id", sa.String(length=26), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "listing_id", name=op.f("pk_watched_listings")),
    )
    with op.batch_alter_table("watched_listings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watched_listings_cert_no"), ["cert_no"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("watched_listings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watched_listings_cert_no"))

    op.drop_table("watched_listings")
    with op.batch_alter_table("watch_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watch_events_platform"))
        batch_op.drop_index(batch_op.f("ix_watch_events_created_at"))

    op.drop_table("watch_events")
    op.drop_table("watch_cursors")
