"""Privacy: when a ticket's reports were purged of what the retention period no longer
allows (photos, free text, exact points), and when a rider was erased.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("purged_at", UtcDateTime()))
    # The purge's candidates: ended tickets not purged yet (a small set, however many
    # tickets were purged before).
    op.create_index(
        "ix_tickets_unpurged_status",
        "tickets",
        ["status", "updated_at"],
        postgresql_where=sa.text("purged_at IS NULL"),
        sqlite_where=sa.text("purged_at IS NULL"),
    )
    op.add_column("riders", sa.Column("erased_at", UtcDateTime()))


def downgrade() -> None:
    op.drop_column("riders", "erased_at")
    op.drop_index("ix_tickets_unpurged_status", "tickets")
    op.drop_column("tickets", "purged_at")
