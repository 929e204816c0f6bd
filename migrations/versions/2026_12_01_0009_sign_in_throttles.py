"""Sign-in throttling: failed sign-ins by account and by client address.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttles",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", UtcDateTime()),
        sa.Column("last_failed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_sign_in_throttles"),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttles")
