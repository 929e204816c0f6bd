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


# A ticket's events stay append-only, but for one change: a note may be cleared (a
# rider's words, at the end of retention or on erasure). Nothing else may change.
EVENT_COLUMNS = (
    "id",
    "ticket_id",
    "type",
    "actor_kind",
    "actor_id",
    "from_status",
    "to_status",
    "data",
    "created_at",
)


def _event_trigger(sqlite: bool, *, notes_may_clear: bool) -> None:
    op.execute("DROP TRIGGER ticket_events_append_only" + ("" if sqlite else " ON ticket_events"))
    if sqlite:
        unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in EVENT_COLUMNS)
        when = (
            f" WHEN NOT (OLD.note IS NOT NULL AND NEW.note IS NULL AND {unchanged})"
            if notes_may_clear
            else ""
        )
        op.execute(
            f"CREATE TRIGGER ticket_events_append_only BEFORE UPDATE ON ticket_events{when} "
            "BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END"
        )
        return
    new = ", ".join(f"NEW.{c}" + ("::text" if c == "data" else "") for c in EVENT_COLUMNS)
    old = ", ".join(f"OLD.{c}" + ("::text" if c == "data" else "") for c in EVENT_COLUMNS)
    allowed = (
        f"IF OLD.note IS NOT NULL AND NEW.note IS NULL "
        f"AND ({new}) IS NOT DISTINCT FROM ({old}) THEN RETURN NEW; END IF;"
        if notes_may_clear
        else ""
    )
    op.execute(f"""
        CREATE OR REPLACE FUNCTION ticket_events_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN {allowed} RAISE EXCEPTION 'ticket_events is append-only'; END $$""")
    op.execute(
        "CREATE TRIGGER ticket_events_append_only BEFORE UPDATE ON ticket_events "
        "FOR EACH ROW EXECUTE FUNCTION ticket_events_append_only()"
    )


ENDED_UNPURGED = "purged_at IS NULL AND status IN ('closed', 'rejected', 'duplicate')"


def upgrade() -> None:
    op.add_column("tickets", sa.Column("purged_at", UtcDateTime()))
    # The purge's candidates: ended tickets not purged yet (a small set, however many
    # tickets were purged before). Open tickets are not in it, and it holds no column
    # that a report joining a ticket changes (updated_at): PostgreSQL's joins stay HOT
    # updates.
    op.create_index(
        "ix_tickets_ended_unpurged",
        "tickets",
        ["status", "closed_at"],
        postgresql_where=sa.text(ENDED_UNPURGED),
        sqlite_where=sa.text(ENDED_UNPURGED),
    )
    op.add_column("riders", sa.Column("erased_at", UtcDateTime()))
    _event_trigger(op.get_bind().dialect.name == "sqlite", notes_may_clear=True)


def downgrade() -> None:
    _event_trigger(op.get_bind().dialect.name == "sqlite", notes_may_clear=False)
    op.drop_column("riders", "erased_at")
    op.drop_index("ix_tickets_ended_unpurged", "tickets")
    op.drop_column("tickets", "purged_at")
