"""Riders' hours and days: each rider's numbers per hour and per (UTC) day, so that a
rider list over a window sums an index range of days and the hours of the days it cuts,
instead of counting every report, verification and ledger line in it.

Filled here from the base tables, the same way ``platform_activity`` was (migration
0004), the days from the hours; from then on kept in step by
``app.riders.points``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = {
    "tickets_opened": "counted_as LIKE 'new_ticket/%'",
    "joined": "counted_as LIKE 'joined_ticket/%'",
    "accepted": "(counted_as LIKE '%/accepted' OR counted_as LIKE '%/resolved')",
    "resolved": "counted_as LIKE '%/resolved'",
    "rejected": "counted_as LIKE '%/rejected'",
}
COUNTERS = ("reports", *COUNTED, "verifications", "points")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, bucket in (("rider_activity", "hour"), ("rider_daily_activity", "day")):
        op.create_table(
            table,
            sa.Column("platform_id", sa.Uuid(), nullable=False),
            sa.Column(bucket, sa.BigInteger(), nullable=False),
            sa.Column("rider_id", sa.Uuid(), nullable=False),
            *(
                sa.Column(name, sa.Integer(), nullable=False, server_default="0")
                for name in COUNTERS
            ),
            sa.PrimaryKeyConstraint("platform_id", bucket, "rider_id", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["platform_id"], ["platforms.id"], name=f"fk_{table}_platform_id_platforms"
            ),
            sa.ForeignKeyConstraint(
                ["rider_id"], ["riders.id"], name=f"fk_{table}_rider_id_riders"
            ),
            sqlite_with_rowid=False,
        )
    # Whole seconds first on SQLite: strftime rounds a fraction to the millisecond.
    hour = (
        "CAST(strftime('%s', substr({}, 1, 19)) AS INTEGER) / 3600"
        if sqlite
        else "CAST(floor(extract(epoch FROM {}) / 3600) AS bigint)"
    )
    reports = ", ".join(
        f"CASE WHEN {condition} THEN 1 ELSE 0 END AS {name}" for name, condition in COUNTED.items()
    )
    op.execute(
        f"INSERT INTO rider_activity (platform_id, hour, rider_id, {', '.join(COUNTERS)}) "
        f"SELECT platform_id, hour, rider_id, "
        f"{', '.join(f'sum({name})' for name in COUNTERS)} FROM ("
        f"SELECT platform_id, {hour.format('received_at')} AS hour, rider_id, 1 AS reports, "
        f"{reports}, 0 AS verifications, 0 AS points FROM reports UNION ALL "
        f"SELECT platform_id, {hour.format('created_at')}, rider_id, 0, 0, 0, 0, 0, 0, 1, 0 "
        "FROM verifications UNION ALL "
        f"SELECT platform_id, {hour.format('created_at')}, rider_id, 0, 0, 0, 0, 0, 0, 0, "
        "points FROM points_ledger"
        ") AS activity "
        "GROUP BY platform_id, hour, rider_id ORDER BY platform_id, hour, rider_id"
    )
    op.execute(
        f"INSERT INTO rider_daily_activity (platform_id, day, rider_id, {', '.join(COUNTERS)}) "
        f"SELECT platform_id, hour / 24, rider_id, "
        f"{', '.join(f'sum({name})' for name in COUNTERS)} FROM rider_activity "
        "GROUP BY platform_id, hour / 24, rider_id ORDER BY platform_id, hour / 24, rider_id"
    )


def downgrade() -> None:
    op.drop_table("rider_daily_activity")
    op.drop_table("rider_activity")
