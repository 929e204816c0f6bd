"""Open311 forwarding: where a category's tickets are sent, what was sent, each call;
tickets indexed by when they were opened and accepted.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(column: str, table: str, source: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], name=f"fk_{source}_{column}_{table}")


def upgrade() -> None:
    op.create_table(
        "open311_forwards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.Integer()),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("api_key", sa.String(256), nullable=False),
        sa.Column("jurisdiction_id", sa.String(64)),
        sa.Column("service_code", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("scanned_until", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_open311_forwards"),
        _fk("category_id", "categories", "open311_forwards"),
        _fk("street_id", "areas", "open311_forwards"),
    )
    op.create_index("ix_open311_forwards_category_id", "open311_forwards", ["category_id"])
    op.create_table(
        "forwarded_tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("forward_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("external_status", sa.String(16)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("posted_at", UtcDateTime()),
        sa.Column("closed_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_forwarded_tickets"),
        sa.UniqueConstraint("ticket_id", name="uq_forwarded_tickets_ticket_id"),
        _fk("ticket_id", "tickets", "forwarded_tickets"),
        _fk("forward_id", "open311_forwards", "forwarded_tickets"),
    )
    op.create_index(
        "ix_forwarded_tickets_state_next_attempt_at",
        "forwarded_tickets",
        ["state", "next_attempt_at"],
    )
    op.create_table(
        "forward_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("forwarded_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("attempted_at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("external_status", sa.String(16)),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_forward_attempts"),
        _fk("forwarded_id", "forwarded_tickets", "forward_attempts"),
    )
    op.create_index("ix_forward_attempts_forwarded_id", "forward_attempts", ["forwarded_id"])

    # Open311's open data newest first, and the forwarding sweeps by the time a ticket
    # was opened or accepted.
    op.create_index("ix_tickets_created_at_id", "tickets", ["created_at", "id"])
    op.create_index(
        "ix_tickets_accepted_at",
        "tickets",
        ["accepted_at"],
        postgresql_where=sa.text("accepted_at IS NOT NULL"),
        sqlite_where=sa.text("accepted_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_accepted_at", "tickets")
    op.drop_index("ix_tickets_created_at_id", "tickets")
    for table in ("forward_attempts", "forwarded_tickets", "open311_forwards"):
        op.drop_table(table)
