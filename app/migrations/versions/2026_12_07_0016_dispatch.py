"""Dispatch: responsible units (the streets and categories they serve), their crews'
accounts, the tickets dispatched to them, the photos staff show with an action, and a
ticket's new states and fields (the unit, 签收, an extension, a review date).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("all_categories", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_units"),
        sa.UniqueConstraint("code", name="uq_units_code"),
    )
    op.create_table(
        "unit_streets",
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("street_id", sa.Integer(), sa.ForeignKey("areas.id"), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", "street_id", name="pk_unit_streets"),
    )
    op.create_index("ix_unit_streets_street_id", "unit_streets", ["street_id"])
    op.create_table(
        "unit_categories",
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("categories.id"), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", "category_id", name="pk_unit_categories"),
    )
    op.create_table(
        "dispatches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("dispatched_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("acknowledged_at", UtcDateTime()),
        sa.Column("started_at", UtcDateTime()),
        sa.Column("done_at", UtcDateTime()),
        sa.Column("done_working_h", sa.Float()),
        sa.Column("done_count", sa.Integer(), nullable=False),
        sa.Column("check_fail_count", sa.Integer(), nullable=False),
        sa.Column("passed_at", UtcDateTime()),
        sa.Column("returned_at", UtcDateTime()),
        sa.Column("return_reason", sa.String(32)),
        sa.Column("return_note", sa.Text()),
        sa.Column("ended_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_dispatches"),
    )
    op.create_index(
        "ix_dispatches_unit_id_dispatched_at", "dispatches", ["unit_id", "dispatched_at"]
    )
    op.create_index(
        "ix_dispatches_ticket_id_dispatched_at", "dispatches", ["ticket_id", "dispatched_at"]
    )
    op.create_table(
        "staff_photos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), sa.ForeignKey("staff.id"), nullable=False),
        sa.Column("upload_sha256", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_photos"),
        sa.UniqueConstraint(
            "uploaded_by", "upload_sha256", name="uq_staff_photos_uploaded_by_upload_sha256"
        ),
    )
    op.create_index("ix_staff_photos_sha256", "staff_photos", ["sha256"])
    op.create_index("ix_staff_photos_thumbnail_sha256", "staff_photos", ["thumbnail_sha256"])
    op.create_index("ix_staff_photos_created_at_id", "staff_photos", ["created_at", "id"])
    op.create_table(
        "event_photos",
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("ticket_events.id"), nullable=False),
        sa.Column("photo_id", sa.Uuid(), sa.ForeignKey("staff_photos.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "photo_id", name="pk_event_photos"),
    )
    op.create_index("ix_event_photos_photo_id", "event_photos", ["photo_id"])

    # Added in place (SQLite's ALTER TABLE ADD COLUMN): the tables keep their spatial
    # columns and indexes as they are. On SQLite without a foreign key, which would stop
    # the column from being dropped again.
    def unit_id() -> sa.Column:
        if op.get_bind().dialect.name == "sqlite":
            return sa.Column("unit_id", sa.Integer())
        return sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"))

    op.add_column("staff", unit_id())
    op.create_index("ix_staff_unit_id", "staff", ["unit_id"])
    op.add_column(
        "categories",
        sa.Column("after_photo_required", sa.Boolean(), nullable=False, server_default="0"),
    )
    for column in (
        unit_id(),
        sa.Column("acknowledged_at", UtcDateTime()),
        sa.Column("extension_hours", sa.Float()),
        sa.Column("extension_reason", sa.Text()),
        sa.Column("extension_status", sa.String(16)),
        sa.Column("review_on", sa.Date()),
        sa.Column("escalated", sa.Boolean(), nullable=False, server_default="0"),
    ):
        op.add_column("tickets", column)
    op.create_index("ix_tickets_unit_id_due_at", "tickets", ["unit_id", "due_at"])
    op.create_index(
        "ix_tickets_review_on",
        "tickets",
        ["review_on"],
        postgresql_where=sa.text("review_on IS NOT NULL"),
        sqlite_where=sa.text("review_on IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_review_on", "tickets")
    op.drop_index("ix_tickets_unit_id_due_at", "tickets")
    for column in (
        "escalated",
        "review_on",
        "extension_status",
        "extension_reason",
        "extension_hours",
        "acknowledged_at",
        "unit_id",
    ):
        op.drop_column("tickets", column)
    op.drop_column("categories", "after_photo_required")
    op.drop_index("ix_staff_unit_id", "staff")
    op.drop_column("staff", "unit_id")
    for table in (
        "event_photos",
        "staff_photos",
        "dispatches",
        "unit_categories",
        "unit_streets",
        "units",
    ):
        op.drop_table(table)
