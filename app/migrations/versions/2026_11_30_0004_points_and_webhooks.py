"""Platforms: the points ledger, riders' totals, webhooks and their outbox.

Reports and verifications gain what a platform's numbers are read by (the platform, the
time). The ledger and the ticket events refuse UPDATE at the database: they are
append-only, whatever code runs against them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("points_ledger", "ticket_events")


def _fk(column: str, table: str, source: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], name=f"fk_{source}_{column}_{table}")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "points_ledger",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid()),
        sa.Column("verification_id", sa.Uuid()),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.Integer()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_points_ledger"),
        _fk("rider_id", "riders", "points_ledger"),
        _fk("platform_id", "platforms", "points_ledger"),
        _fk("ticket_id", "tickets", "points_ledger"),
        _fk("event_id", "ticket_events", "points_ledger"),
        _fk("report_id", "reports", "points_ledger"),
        _fk("verification_id", "verifications", "points_ledger"),
        _fk("category_id", "categories", "points_ledger"),
        _fk("street_id", "areas", "points_ledger"),
    )
    op.create_index(
        "ix_points_ledger_rider_id_created_at", "points_ledger", ["rider_id", "created_at"]
    )
    op.create_index(
        "ix_points_ledger_platform_id_created_at", "points_ledger", ["platform_id", "created_at"]
    )
    op.create_index("ix_points_ledger_report_id", "points_ledger", ["report_id"])

    counters = (
        "reports",
        "tickets_opened",
        "joined",
        "accepted",
        "resolved",
        "rejected",
        "verifications",
        "points",
    )
    op.create_table(
        "rider_totals",
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in counters),
        sa.PrimaryKeyConstraint("rider_id", name="pk_rider_totals"),
        _fk("rider_id", "riders", "rider_totals"),
        _fk("platform_id", "platforms", "rider_totals"),
    )
    op.create_index(
        "ix_rider_totals_platform_id_points_rider_id",
        "rider_totals",
        ["platform_id", "points", "rider_id"],
    )

    op.create_table(
        "webhooks",
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("platform_id", name="pk_webhooks"),
        _fk("platform_id", "platforms", "webhooks"),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_events"),
        _fk("platform_id", "platforms", "outbox_events"),
    )
    op.create_index(
        "ix_outbox_events_state_next_attempt_at", "outbox_events", ["state", "next_attempt_at"]
    )
    op.create_index(
        "ix_outbox_events_platform_id_created_at", "outbox_events", ["platform_id", "created_at"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        _fk("event_id", "outbox_events", "webhook_deliveries"),
        _fk("platform_id", "platforms", "webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_event_id", "webhook_deliveries", ["event_id"])
    op.create_index(
        "ix_webhook_deliveries_platform_id_attempted_at",
        "webhook_deliveries",
        ["platform_id", "attempted_at"],
    )

    # Reports carry their rider's platform; existing ones get it from the rider. (SQLite
    # cannot add a NOT NULL column without a default; the application always sets it.)
    op.add_column("reports", sa.Column("platform_id", sa.Uuid(), nullable=True))
    op.add_column("reports", sa.Column("counted_as", sa.String(32), nullable=True))
    op.execute(
        "UPDATE reports SET platform_id = "
        "(SELECT platform_id FROM riders WHERE riders.id = reports.rider_id)"
    )
    if not sqlite:
        op.alter_column("reports", "platform_id", nullable=False)
        op.create_foreign_key(
            "fk_reports_platform_id_platforms", "reports", "platforms", ["platform_id"], ["id"]
        )
    op.create_index("ix_reports_platform_id_received_at", "reports", ["platform_id", "received_at"])
    # Verifications carry their rider's platform and their ticket's category and street.
    op.add_column("verifications", sa.Column("platform_id", sa.Uuid(), nullable=True))
    op.add_column("verifications", sa.Column("category_id", sa.Integer(), nullable=True))
    op.add_column("verifications", sa.Column("street_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE verifications SET platform_id = "
        "(SELECT platform_id FROM riders WHERE riders.id = verifications.rider_id), "
        "category_id = (SELECT category_id FROM tickets "
        "WHERE tickets.id = verifications.ticket_id), "
        "street_id = (SELECT street_id FROM tickets "
        "WHERE tickets.id = verifications.ticket_id)"
    )
    if not sqlite:
        op.alter_column("verifications", "platform_id", nullable=False)
        op.alter_column("verifications", "category_id", nullable=False)
        for column, table in (
            ("platform_id", "platforms"),
            ("category_id", "categories"),
            ("street_id", "areas"),
        ):
            op.create_foreign_key(
                f"fk_verifications_{column}_{table}", "verifications", table, [column], ["id"]
            )
    op.create_index(
        "ix_verifications_platform_id_created_at", "verifications", ["platform_id", "created_at"]
    )
    op.create_table(
        "platform_activity",
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("street_key", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in counters),
        sa.PrimaryKeyConstraint(
            "platform_id", "hour", "category_id", "street_key", name="pk_platform_activity"
        ),
        _fk("platform_id", "platforms", "platform_activity"),
    )

    # Every report counted as its ticket stands (app.riders.points.standing),
    # and every rider's totals counted from that; there were no points before the ledger.
    op.execute("""
        UPDATE reports SET counted_as = outcome || '/' || (
          SELECT CASE WHEN t.status = 'rejected' THEN 'rejected'
                      WHEN t.status IN ('resolved', 'closed') THEN 'resolved'
                      WHEN t.accepted_at IS NOT NULL THEN 'accepted'
                      ELSE 'pending' END
          FROM tickets t WHERE t.id = reports.ticket_id)
    """)
    op.execute(
        "INSERT INTO rider_totals (rider_id, platform_id) SELECT id, platform_id FROM riders"
    )
    counted = {
        "reports": "counted_as IS NOT NULL",
        "tickets_opened": "counted_as LIKE 'new_ticket/%'",
        "joined": "counted_as LIKE 'joined_ticket/%'",
        "accepted": "(counted_as LIKE '%/accepted' OR counted_as LIKE '%/resolved')",
        "resolved": "counted_as LIKE '%/resolved'",
        "rejected": "counted_as LIKE '%/rejected'",
    }
    op.execute(
        "UPDATE rider_totals SET "
        + ", ".join(
            f"{name} = (SELECT count(*) FROM reports r WHERE r.rider_id = rider_totals.rider_id "
            f"AND {condition})"
            for name, condition in counted.items()
        )
        + ", verifications = (SELECT count(*) FROM verifications v "
        "WHERE v.rider_id = rider_totals.rider_id)"
    )

    hour = (
        "CAST(strftime('%s', substr({}, 1, 19)) AS INTEGER) / 3600"
        if sqlite
        else "CAST(floor(extract(epoch FROM {}) / 3600) AS bigint)"
    )
    op.execute(
        "INSERT INTO platform_activity (platform_id, hour, category_id, street_key, reports, "
        "tickets_opened, joined, accepted, resolved, rejected, verifications) "
        f"SELECT platform_id, hour, category_id, street_key, sum(reports), sum(opened), "
        f"sum(joined), sum(accepted), sum(resolved), sum(rejected), sum(verifications) FROM ("
        f"SELECT platform_id, {hour.format('received_at')} AS hour, category_id, "
        "coalesce(street_id, 0) AS street_key, 1 AS reports, "
        f"CASE WHEN {counted['tickets_opened']} THEN 1 ELSE 0 END AS opened, "
        f"CASE WHEN {counted['joined']} THEN 1 ELSE 0 END AS joined, "
        f"CASE WHEN {counted['accepted']} THEN 1 ELSE 0 END AS accepted, "
        f"CASE WHEN {counted['resolved']} THEN 1 ELSE 0 END AS resolved, "
        f"CASE WHEN {counted['rejected']} THEN 1 ELSE 0 END AS rejected, "
        "0 AS verifications FROM reports UNION ALL "
        f"SELECT platform_id, {hour.format('created_at')}, category_id, "
        "coalesce(street_id, 0), 0, 0, 0, 0, 0, 0, 1 FROM verifications) AS activity "
        "GROUP BY platform_id, hour, category_id, street_key"
    )

    for table in APPEND_ONLY:
        if sqlite:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        else:
            op.execute(f"""
                CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION '{table} is append-only'; END $$""")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_append_only" + ("" if sqlite else f" ON {table}"))
        if not sqlite:
            op.execute(f"DROP FUNCTION {table}_append_only()")
    op.drop_table("platform_activity")
    op.drop_index("ix_verifications_platform_id_created_at", "verifications")
    for column, table in (
        ("platform_id", "platforms"),
        ("category_id", "categories"),
        ("street_id", "areas"),
    ):
        if not sqlite:
            op.drop_constraint(f"fk_verifications_{column}_{table}", "verifications")
        op.drop_column("verifications", column)
    op.drop_index("ix_reports_platform_id_received_at", "reports")
    if not sqlite:
        op.drop_constraint("fk_reports_platform_id_platforms", "reports")
    op.drop_column("reports", "counted_as")
    op.drop_column("reports", "platform_id")
    for table in (
        "webhook_deliveries",
        "outbox_events",
        "webhooks",
        "rider_totals",
        "points_ledger",
    ):
        op.drop_table(table)
