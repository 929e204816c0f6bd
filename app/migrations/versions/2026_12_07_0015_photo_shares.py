"""Riders' photos: the uploads each rider sent to be decoded (the share of an hour and a
day), and an index for the sweep of photos nobody used, which remembers how far it got.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_media_created_at_id", "media", ["created_at", "id"])
    op.create_table(
        "photo_uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), sa.ForeignKey("riders.id"), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_photo_uploads"),
    )
    op.create_index("ix_photo_uploads_rider_id_at", "photo_uploads", ["rider_id", "at"])
    op.create_index("ix_photo_uploads_at", "photo_uploads", ["at"])
    op.create_table(
        "job_marks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("after_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_marks"),
    )


def downgrade() -> None:
    op.drop_table("job_marks")
    op.drop_table("photo_uploads")
    op.drop_index("ix_media_created_at_id", "media")
