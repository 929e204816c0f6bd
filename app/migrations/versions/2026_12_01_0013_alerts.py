"""Area alerts: alerts with their area and growth schedule, the district's photos for
them, riders' sightings (with their photos), every step as an audit event; the staff
flag an admin grants to publish them; photos found by their thumbnail's digest too.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("district_id", sa.Integer(), sa.ForeignKey("areas.id"), nullable=False),
        sa.Column("published_by", sa.Uuid(), sa.ForeignKey("staff.id"), nullable=False),
        sa.Column("area_code", sa.String(32)),
        sa.Column("center_lon", sa.Float()),
        sa.Column("center_lat", sa.Float()),
        sa.Column("radius_m", sa.Float()),
        sa.Column("growth", sa.JSON()),
        sa.Column("area", sa.JSON(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("closed_at", UtcDateTime()),
        sa.Column("outcome", sa.String(32)),
        sa.Column("close_note", sa.Text()),
        sa.Column("purged_at", UtcDateTime()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_status_expires_at", "alerts", ["status", "expires_at"])
    op.create_index("ix_alerts_district_id_created_at", "alerts", ["district_id", "created_at"])
    op.create_table(
        "alert_photos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), sa.ForeignKey("alerts.id")),
        sa.Column("uploaded_by", sa.Uuid(), sa.ForeignKey("staff.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_photos"),
    )
    op.create_index("ix_alert_photos_alert_id", "alert_photos", ["alert_id"])
    # Whether a blob is still named (by a photo or a thumbnail) is asked before any blob
    # is deleted: by index, however many photos there are.
    op.create_index("ix_alert_photos_sha256", "alert_photos", ["sha256"])
    op.create_index("ix_alert_photos_thumbnail_sha256", "alert_photos", ["thumbnail_sha256"])
    op.create_index("ix_media_thumbnail_sha256", "media", ["thumbnail_sha256"])
    op.create_table(
        "alert_sightings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("rider_id", sa.Uuid(), sa.ForeignKey("riders.id"), nullable=False),
        sa.Column("platform_id", sa.Uuid(), sa.ForeignKey("platforms.id"), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_sightings"),
    )
    op.create_index(
        "ix_alert_sightings_alert_id_created_at", "alert_sightings", ["alert_id", "created_at"]
    )
    op.create_index(
        "ix_alert_sightings_rider_id_created_at", "alert_sightings", ["rider_id", "created_at"]
    )
    op.create_table(
        "sighting_media",
        sa.Column("sighting_id", sa.Uuid(), sa.ForeignKey("alert_sightings.id"), nullable=False),
        sa.Column("media_id", sa.Uuid(), sa.ForeignKey("media.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sighting_id", "media_id", name="pk_sighting_media"),
    )
    op.create_index("ix_sighting_media_media_id", "sighting_media", ["media_id"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Uuid()),
        sa.Column("data", sa.JSON()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])
    op.add_column(
        "staff",
        sa.Column("may_publish_alerts", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_index("ix_media_thumbnail_sha256", "media")
    op.drop_column("staff", "may_publish_alerts")
    for table in ("alert_events", "sighting_media", "alert_sightings", "alert_photos", "alerts"):
        op.drop_table(table)
