"""Riders' photos: indexes for the upload share (a rider's photos of the last hour and
day) and for the sweep of photos nobody used, which remembers how far it got.

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
    op.create_index("ix_media_rider_id_created_at", "media", ["rider_id", "created_at"])
    op.create_index("ix_media_created_at_id", "media", ["created_at", "id"])
    op.create_table(
        "job_marks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("after_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_marks"),
    )


def downgrade() -> None:
    op.drop_table("job_marks")
    op.drop_index("ix_media_created_at_id", "media")
    op.drop_index("ix_media_rider_id_created_at", "media")
