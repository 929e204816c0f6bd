"""Working time and the national classification: a working calendar per year (holidays,
adjusted working days, office hours), held in memory like areas and categories (a
reference version token, replaced by trigger); each category's SLA clock (wall-clock or
working hours) and its GB/T 30428.2 classification, filled in for the seven default
categories where they exist.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLOCK_RULE = "sla_clock IN ('hours', 'working_hours')"
CLOCK_CHECK = "ck_categories_sla_clock"
# The defaults' classification as of this revision (app.ops.demo holds the same for
# new installs; admins change either through the category API).
STANDARD = {
    "road_damage": ("component", "02", "道路交通", "0201", "道路"),
    "ebike_parking": ("event", "05", "街面秩序", "0506", "非机动车乱停放"),
    "facility_damage": ("component", "01", "公用设施", "0101", "井盖"),
    "fire_exit_blocked": ("event", "06", "扩展事件", "0601", "消防通道堵塞"),
    "illegal_charging": ("event", "06", "扩展事件", "0602", "电动车违规充电"),
    "waste": ("event", "01", "市容环境", "0102", "暴露垃圾"),
    "other": ("event", "06", "扩展事件", "0699", "其他"),
}
FIELDS = ("kind", "class_code", "class_name", "subclass_code", "subclass_name")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "working_calendars",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("office_start", sa.String(5), nullable=False),
        sa.Column("office_end", sa.String(5), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("workdays", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_working_calendars"),
    )
    op.execute(
        sa.text(
            "INSERT INTO reference_versions (name, token) VALUES ('working_calendars', :t)"
        ).bindparams(t=uuid.uuid4().hex)
    )
    if sqlite:
        for change in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER working_calendars_{change.lower()}_changes_version "
                f"AFTER {change} ON working_calendars BEGIN "
                "UPDATE reference_versions SET token = lower(hex(randomblob(16))) "
                "WHERE name = 'working_calendars'; END"
            )
    else:
        op.execute(
            "CREATE TRIGGER working_calendars_changes_version "
            "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON working_calendars "
            "FOR EACH STATEMENT EXECUTE FUNCTION sentinel_new_reference_version()"
        )
    op.add_column(
        "categories",
        sa.Column("sla_clock", sa.String(16), nullable=False, server_default="hours"),
    )
    op.add_column("categories", sa.Column("standard", sa.JSON()))
    if sqlite:
        for change in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {CLOCK_CHECK}_{change.lower()} BEFORE {change} ON categories "
                f"WHEN NOT (NEW.{CLOCK_RULE}) BEGIN "
                f"SELECT RAISE(ABORT, 'CHECK constraint failed: {CLOCK_CHECK}'); END"
            )
    else:
        op.create_check_constraint(op.f(CLOCK_CHECK), "categories", CLOCK_RULE)
    categories = sa.table("categories", sa.column("code"), sa.column("standard", sa.JSON()))
    for code, values in STANDARD.items():
        op.execute(
            categories.update()
            .where(categories.c.code == code, categories.c.standard.is_(None))
            .values(standard=dict(zip(FIELDS, values, strict=True)))
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for change in ("insert", "update"):
            op.execute(f"DROP TRIGGER {CLOCK_CHECK}_{change}")
        for change in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER working_calendars_{change}_changes_version")
    else:
        op.drop_constraint(op.f(CLOCK_CHECK), "categories", type_="check")
        op.execute("DROP TRIGGER working_calendars_changes_version ON working_calendars")
    op.drop_column("categories", "standard")
    op.drop_column("categories", "sla_clock")
    op.execute("DELETE FROM reference_versions WHERE name = 'working_calendars'")
    op.drop_table("working_calendars")
