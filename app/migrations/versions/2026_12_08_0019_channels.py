"""Channels that tell offices, districts and units what happens (WeCom, DingTalk,
Feishu, e-mail, webhooks), the messages queued for them and each attempt to send one;
the deadline marks the worker keeps on each ticket (the warning, the escalation); and
the index by which the worker reads the events somebody is told of.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFYING = (
    "type IN ('created', 'dispatch', 'sla_warning', 'sla_breached', 'escalated', "
    "'reopen', 'reopened', 'request_extension')"
)


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(256)),
        sa.Column("area_id", sa.Integer(), sa.ForeignKey("areas.id"), index=True),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), index=True),
        sa.Column("lang", sa.String(2), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON()),
        sa.Column("min_priority", sa.Integer()),
        sa.Column("quiet_hours", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failing_since", UtcDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_sent_at", UtcDateTime()),
        sa.Column("allowance", sa.Float(), nullable=False),
        sa.Column("allowance_at", UtcDateTime()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("channel_id", sa.Integer(), sa.ForeignKey("channels.id"), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), sa.ForeignKey("tickets.id"), index=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime()),
    )
    op.create_index(
        "ix_notifications_state_next_attempt_at", "notifications", ["state", "next_attempt_at"]
    )
    op.create_index(
        "ix_notifications_channel_id_created_at", "notifications", ["channel_id", "created_at"]
    )
    op.create_table(
        "channel_deliveries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("channel_id", sa.Integer(), sa.ForeignKey("channels.id"), nullable=False),
        sa.Column("attempted_at", UtcDateTime(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_channel_deliveries_channel_id_attempted_at",
        "channel_deliveries",
        ["channel_id", "attempted_at"],
    )
    for column in ("warn_at", "warned_at", "escalate_at", "escalated_at"):
        op.add_column("tickets", sa.Column(column, UtcDateTime()))
    # Tickets of before: open ones get their marks worked out by the worker; ended ones
    # are marked done, so that the worker never looks at them.
    op.execute(
        "UPDATE tickets SET warn_at = due_at, warned_at = updated_at, escalate_at = due_at, "
        "escalated_at = updated_at WHERE status IN ('resolved', 'closed', 'rejected', "
        "'duplicate')"
    )
    # Open tickets already past their deadline have had their warning and their breach:
    # marked done, so that the first rounds of the worker do not escalate the whole
    # backlog at once to the district (those still on time get their marks worked out).
    op.execute(
        sa.text(
            "UPDATE tickets SET warn_at = due_at, warned_at = updated_at, "
            "escalate_at = due_at, escalated_at = updated_at "
            "WHERE warn_at IS NULL AND due_at < :now"
        ).bindparams(sa.bindparam("now", value=datetime.now(UTC), type_=UtcDateTime()))
    )
    op.create_index(
        "ix_tickets_marks_unset",
        "tickets",
        ["created_at"],
        postgresql_where=sa.text("warn_at IS NULL"),
        sqlite_where=sa.text("warn_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_warn_at",
        "tickets",
        ["warn_at"],
        postgresql_where=sa.text("warned_at IS NULL"),
        sqlite_where=sa.text("warned_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_escalate_at",
        "tickets",
        ["escalate_at"],
        postgresql_where=sa.text("escalated_at IS NULL"),
        sqlite_where=sa.text("escalated_at IS NULL"),
    )
    op.create_index(
        "ix_ticket_events_notifying",
        "ticket_events",
        ["created_at", "id"],
        postgresql_where=sa.text(NOTIFYING),
        sqlite_where=sa.text(NOTIFYING),
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_events_notifying", "ticket_events")
    for index in ("ix_tickets_escalate_at", "ix_tickets_warn_at", "ix_tickets_marks_unset"):
        op.drop_index(index, "tickets")
    for column in ("escalated_at", "escalate_at", "warned_at", "warn_at"):
        op.drop_column("tickets", column)
    op.drop_table("channel_deliveries")
    op.drop_table("notifications")
    op.drop_table("channels")
