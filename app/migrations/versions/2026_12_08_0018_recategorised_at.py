"""When an office last corrected a ticket's category, indexed for the forwarding
worker's look at the tickets recategorised since its last sweep.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("recategorised_at", UtcDateTime()))
    op.create_index(
        "ix_tickets_recategorised_at",
        "tickets",
        ["recategorised_at"],
        postgresql_where=sa.text("recategorised_at IS NOT NULL"),
        sqlite_where=sa.text("recategorised_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_recategorised_at", "tickets")
    op.drop_column("tickets", "recategorised_at")
