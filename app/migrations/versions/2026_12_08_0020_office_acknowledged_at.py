"""When the office first signed for a ticket (签收: an officer's or the district's first
``acknowledge`` or ``accept``), kept on the ticket for the figures of acknowledgement;
tickets of before get it from their events.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("office_acknowledged_at", UtcDateTime()))
    # The earliest acknowledgement or acceptance by an officer or the district (not the
    # system's, not a crew's) of each ticket that had one.
    tickets = sa.table(
        "tickets",
        sa.column("id", sa.Uuid()),
        sa.column("office_acknowledged_at", UtcDateTime()),
    )
    events = sa.table(
        "ticket_events",
        sa.column("ticket_id", sa.Uuid()),
        sa.column("type", sa.String()),
        sa.column("actor_id", sa.Uuid()),
        sa.column("created_at", UtcDateTime()),
    )
    staff = sa.table("staff", sa.column("id", sa.Uuid()), sa.column("role", sa.String()))
    first = (
        sa.select(sa.func.min(events.c.created_at))
        .select_from(events.join(staff, staff.c.id == events.c.actor_id))
        .where(
            events.c.ticket_id == tickets.c.id,
            events.c.type.in_(("acknowledge", "accept")),
            staff.c.role.in_(("officer", "district")),
        )
        .scalar_subquery()
    )
    op.get_bind().execute(
        tickets.update().where(first.is_not(None)).values(office_acknowledged_at=first)
    )


def downgrade() -> None:
    op.drop_column("tickets", "office_acknowledged_at")
