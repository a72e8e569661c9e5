"""signal first merchant

The first merchant of each signal moves from signal_merchants into its signal_counts row
(first_merchant: the smallest id, as a batch's fold picks); signal_merchants keeps the others.
`merchants` counts them all before and after.

Revision ID: 3f8a61c2d9e5
Revises: 9d3b6e1f4a28
Create Date: 2026-12-05 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f8a61c2d9e5"
down_revision: str | None = "9d3b6e1f4a28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SAME_KEY = "m.platform = c.platform AND m.cert_no = c.cert_no AND m.kind = c.kind"


def upgrade() -> None:
    op.add_column("signal_counts", sa.Column("first_merchant", sa.Text(), nullable=True))
    op.execute(
        "UPDATE signal_counts AS c SET first_merchant = "  # nosec B608 # constants only
        f"(SELECT min(m.merchant_id) FROM signal_merchants AS m WHERE {_SAME_KEY})"
    )
    op.execute(
        "DELETE FROM signal_merchants AS m WHERE EXISTS ("  # nosec B608 # constants only
        f"SELECT 1 FROM signal_counts AS c WHERE {_SAME_KEY} AND m.merchant_id = c.first_merchant)"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO signal_merchants (platform, cert_no, kind, merchant_id) "
        "SELECT platform, cert_no, kind, first_merchant FROM signal_counts "
        "WHERE first_merchant IS NOT NULL"
    )
    op.drop_column("signal_counts", "first_merchant")
