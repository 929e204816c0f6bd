"""Public data and moderation: the office's public summary of a ticket, reports hidden
from every public output (with how many of a ticket's are, and when all of them were),
and the published, blurred copies of photos.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (SQLite's ALTER TABLE ADD COLUMN): the tables keep their spatial
    # columns and indexes as they are.
    op.add_column("tickets", sa.Column("public_summary", sa.Text()))
    op.add_column(
        "tickets",
        sa.Column("hidden_report_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("tickets", sa.Column("hidden_at", UtcDateTime()))
    op.add_column("reports", sa.Column("hidden_at", UtcDateTime()))
    op.add_column("reports", sa.Column("hidden_reason", sa.String(32)))
    op.create_table(
        "public_photos",
        sa.Column("media_id", sa.Uuid(), sa.ForeignKey("media.id"), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.Uuid(), sa.ForeignKey("staff.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("media_id", name="pk_public_photos"),
    )
    op.create_index("ix_public_photos_sha256", "public_photos", ["sha256"])
    op.create_index("ix_public_photos_thumbnail_sha256", "public_photos", ["thumbnail_sha256"])


def downgrade() -> None:
    op.drop_table("public_photos")
    for table, column in (
        ("reports", "hidden_reason"),
        ("reports", "hidden_at"),
        ("tickets", "hidden_at"),
        ("tickets", "hidden_report_count"),
        ("tickets", "public_summary"),
    ):
        op.drop_column(table, column)
