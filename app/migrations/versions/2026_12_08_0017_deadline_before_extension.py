"""A ticket's fix deadline before the district first moved it (an approved extension),
for the share of fixes on time without more time.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("original_resolve_by", UtcDateTime()))
    # Tickets extended before this revision: the deadline before their (last approved)
    # extension, its hours taken off in wall-clock time (on a category counted in working
    # hours, no earlier than the deadline it had: few tickets, if any, were extended
    # before this revision).
    tickets = sa.table(
        "tickets",
        sa.column("id", sa.Uuid()),
        sa.column("resolve_by", UtcDateTime()),
        sa.column("extension_hours", sa.Float()),
        sa.column("extension_status", sa.String()),
        sa.column("original_resolve_by", UtcDateTime()),
    )
    connection = op.get_bind()
    extended = connection.execute(
        sa.select(tickets.c.id, tickets.c.resolve_by, tickets.c.extension_hours).where(
            tickets.c.extension_status == "approved", tickets.c.extension_hours.is_not(None)
        )
    ).all()
    for ticket_id, resolve_by, hours in extended:
        connection.execute(
            tickets.update()
            .where(tickets.c.id == ticket_id)
            .values(original_resolve_by=resolve_by - timedelta(hours=hours))
        )


def downgrade() -> None:
    op.drop_column("tickets", "original_resolve_by")
