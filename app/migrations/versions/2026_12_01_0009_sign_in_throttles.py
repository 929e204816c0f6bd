"""Sign-in: failed sign-ins by account and by client address; staff tokens revoked by
time (sign-out, a new password); a platform's previous key honoured for a grace period.

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
    op.add_column("staff", sa.Column("tokens_valid_after", UtcDateTime()))
    op.add_column("platforms", sa.Column("previous_key_hash", sa.String(64)))
    op.add_column("platforms", sa.Column("previous_key_expires_at", UtcDateTime()))
    op.create_index("ix_platforms_previous_key_hash", "platforms", ["previous_key_hash"])


def downgrade() -> None:
    op.drop_index("ix_platforms_previous_key_hash", "platforms")
    # Plain DROP COLUMN, on SQLite too: a batch copy of tables that others reference
    # would trip their foreign keys.
    op.drop_column("platforms", "previous_key_expires_at")
    op.drop_column("platforms", "previous_key_hash")
    op.drop_column("staff", "tokens_valid_after")
    op.drop_table("sign_in_throttles")
