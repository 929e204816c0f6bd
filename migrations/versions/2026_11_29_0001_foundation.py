"""Foundation: areas, categories, platforms, riders, staff.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from app.models.base import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", UtcDateTime(), nullable=False),
            sa.Column("updated_at", UtcDateTime(), nullable=False)]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    else:
        has_metadata = bind.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'spatial_ref_sys'"
        ).first()
        if not has_metadata:
            # Inside the migration's transaction already, so not in its own (argument 0).
            op.execute("SELECT InitSpatialMetadata(0)")

    op.create_table(
        "areas",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200)),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer(),
                  sa.ForeignKey("areas.id", name="fk_areas_parent_id_areas")),
        sa.Column("source", sa.String(200)),
        sa.Column("boundary", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True),
                  nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_areas"),
        sa.UniqueConstraint("code", name="uq_areas_code"),
    )
    op.create_index("ix_areas_level", "areas", ["level"])
    op.create_index("ix_areas_parent_id", "areas", ["parent_id"])

    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name_zh", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("respond_within_h", sa.Integer(), nullable=False),
        sa.Column("resolve_within_h", sa.Integer(), nullable=False),
        sa.Column("dedup_radius_m", sa.Integer(), nullable=False),
        sa.Column("dedup_window_h", sa.Integer(), nullable=False),
        sa.Column("points_open", sa.Integer(), nullable=False),
        sa.Column("points_confirm", sa.Integer(), nullable=False),
        sa.Column("points_resolve", sa.Integer(), nullable=False),
        sa.Column("points_verify", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.UniqueConstraint("code", name="uq_categories_code"),
    )

    op.create_table(
        "platforms",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False),
        sa.Column("api_key_prefix", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_platforms"),
        sa.UniqueConstraint("code", name="uq_platforms_code"),
        sa.UniqueConstraint("api_key_hash", name="uq_platforms_api_key_hash"),
    )

    op.create_table(
        "riders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(100)),
        sa.Column("pseudonym", sa.String(32), nullable=False),
        sa.Column("last_token_at", UtcDateTime()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_riders"),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"],
                                name="fk_riders_platform_id_platforms"),
        sa.UniqueConstraint("platform_id", "external_id", name="uq_riders_platform_id_external_id"),
    )
    op.create_index("ix_riders_platform_id", "riders", ["platform_id"])

    op.create_table(
        "staff",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100)),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("area_id", sa.Integer()),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
        sa.ForeignKeyConstraint(["area_id"], ["areas.id"], name="fk_staff_area_id_areas"),
        sa.UniqueConstraint("username", name="uq_staff_username"),
    )
    op.create_index("ix_staff_area_id", "staff", ["area_id"])


def downgrade() -> None:
    op.drop_table("staff")
    op.drop_table("riders")
    op.drop_table("platforms")
    op.drop_table("categories")
    if op.get_bind().dialect.name == "sqlite":
        # SpatiaLite keeps the geometry's registration and its R*Tree outside the table.
        op.execute("SELECT DisableSpatialIndex('areas', 'boundary')")
        op.execute("DROP TABLE IF EXISTS idx_areas_boundary")
        op.execute("SELECT DiscardGeometryColumn('areas', 'boundary')")
    op.drop_table("areas")
    # The postgis extension and SpatiaLite's metadata tables stay: other schemas may use
    # them, and re-running the upgrade finds them in place.
