"""A reporter's rating of the fix: the ticket marked dissatisfied by a low one; and the
rating, a transfer and a relocation among the events somebody is told of (the index of
those events again, with them: a ticket moved to another street is news there).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "'created', 'dispatch', 'sla_warning', 'sla_breached', 'escalated', 'reopen', "
    "'reopened', 'request_extension'"
)
NOW = BEFORE + ", 'rated', 'transfer', 'relocate'"


def _notifying(types: str) -> None:
    op.drop_index("ix_ticket_events_notifying", "ticket_events")
    op.create_index(
        "ix_ticket_events_notifying",
        "ticket_events",
        ["created_at", "id"],
        postgresql_where=sa.text(f"type IN ({types})"),
        sqlite_where=sa.text(f"type IN ({types})"),
    )


def upgrade() -> None:
    op.add_column(
        "tickets",
        sa.Column("dissatisfied", sa.Boolean(), nullable=False, server_default="0"),
    )
    _notifying(NOW)


def downgrade() -> None:
    _notifying(BEFORE)
    op.drop_column("tickets", "dissatisfied")
