"""Intake in batches: reference versions, and a ticket's reports by rider.

A token per table of reference data (areas, categories) that the database itself
replaces whenever a statement changes the table, so that every process holding a copy
of that data in memory can tell, with one small read, that its copy is still current —
whichever code, tool or person changed the table. The token is random rather than a
counter: a table restored from a snapshot (a backup, or the test suite's baseline)
brings back the token it had with that data.

The index of reports by ticket becomes one by ticket and rider: every report that joins
a ticket asks whether its rider reported that ticket already, which the old index
answered only by reading all of the ticket's reports (or, ANDed with the rider's index,
all of the rider's).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("areas", "categories")


def upgrade() -> None:
    op.create_index("ix_reports_ticket_id_rider_id", "reports", ["ticket_id", "rider_id"])
    op.drop_index("ix_reports_ticket_id", "reports")
    versions = op.create_table(
        "reference_versions",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_reference_versions"),
    )
    op.bulk_insert(versions, [{"name": table, "token": uuid.uuid4().hex} for table in TABLES])
    if op.get_bind().dialect.name == "sqlite":
        # SQLite has row triggers only; an import of many areas replaces the token per row.
        for table in TABLES:
            for change in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_{change.lower()}_changes_version "
                    f"AFTER {change} ON {table} BEGIN "
                    f"UPDATE reference_versions SET token = lower(hex(randomblob(16))) "
                    f"WHERE name = '{table}'; END"
                )
        return
    op.execute(
        "CREATE FUNCTION sentinel_new_reference_version() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE reference_versions SET token = replace(gen_random_uuid()::text, '-', '') "
        "WHERE name = TG_TABLE_NAME; RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changes_version "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION sentinel_new_reference_version()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for change in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{change}_changes_version")
    else:
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_changes_version ON {table}")
        op.execute("DROP FUNCTION sentinel_new_reference_version()")
    op.drop_table("reference_versions")
    op.create_index("ix_reports_ticket_id", "reports", ["ticket_id"])
    op.drop_index("ix_reports_ticket_id_rider_id", "reports")
