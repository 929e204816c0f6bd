"""Foundation: areas, categories, platforms, riders, staff.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from app.models.base import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    ]


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
        sa.Column(
            "parent_id", sa.Integer(), sa.ForeignKey("areas.id", name="fk_areas_parent_id_areas")
        ),
        sa.Column("source", sa.String(200)),
        sa.Column(
            "boundary", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_areas"),
        sa.UniqueConstraint("code", name="uq_areas_code"),
    )
    op.create_index("ix_areas_level", "areas", ["level"])
    op.create_index("ix_areas_parent_id", "areas", ["parent_id"])

    categories = op.create_table(
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

    _seed_default_categories(categories)

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
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name="fk_riders_platform_id_platforms"
        ),
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


# The categories shipped (docs/api.md, "Categories"); admins may change them afterwards.
# (code, zh, en, department, priority, dedup_radius_m, respond_within_h, resolve_within_h,
#  description)
DEFAULT_CATEGORIES = [
    (
        "road_damage",
        "道路破损",
        "Road damage",
        "市政道路养护",
        2,
        30,
        24,
        120,
        "Potholes, broken kerbs and paving, sunken road surface.",
    ),
    (
        "ebike_parking",
        "电动车乱停放",
        "Badly parked e-bikes",
        "城管执法",
        3,
        20,
        4,
        24,
        "E-bikes and bicycles blocking pavements, crossings or entrances.",
    ),
    (
        "facility_damage",
        "公共设施损坏 (井盖、路灯、护栏)",
        "Damaged public facility (manhole cover, street light, railing)",
        "市政设施管理",
        1,
        25,
        24,
        72,
        "Missing or broken manhole covers, dark street lights, broken railings.",
    ),
    (
        "fire_exit_blocked",
        "消防通道堵塞",
        "Fire exit or lane blocked",
        "消防救援",
        1,
        30,
        2,
        12,
        "Vehicles or goods blocking fire lanes, exits or hydrants.",
    ),
    (
        "illegal_charging",
        "飞线充电",
        "Illegal charging cable",
        "消防救援",
        1,
        20,
        4,
        24,
        "E-bike charging cables strung from windows or across walkways.",
    ),
    (
        "waste",
        "垃圾堆放",
        "Dumped waste",
        "绿化市容",
        3,
        40,
        12,
        48,
        "Piles of rubbish, construction waste or bulky items left in public.",
    ),
    (
        "other",
        "其他",
        "Other",
        "街道综合管理",
        3,
        0,
        24,
        168,
        "Anything else a street office should know about. Never merged.",
    ),
]


def _seed_default_categories(categories: sa.Table) -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        categories,
        [
            {
                "code": code,
                "name_zh": zh,
                "name_en": en,
                "department": department,
                "priority": priority,
                "dedup_radius_m": radius,
                "respond_within_h": respond_h,
                "resolve_within_h": resolve_h,
                "description": description,
                "dedup_window_h": 72,
                "points_open": 10,
                "points_confirm": 2,
                "points_resolve": 5,
                "points_verify": 3,
                "active": True,
                "sort_order": order,
                "created_at": now,
                "updated_at": now,
            }
            for order, (
                code,
                zh,
                en,
                department,
                priority,
                radius,
                respond_h,
                resolve_h,
                description,
            ) in enumerate(DEFAULT_CATEGORIES)
        ],
    )


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
