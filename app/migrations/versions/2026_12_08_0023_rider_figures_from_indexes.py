"""A rider's figures by category read from the rider's index alone: its reports' and
its ledger lines' category (and a report's outcome, a line's points) carried in the
index, so that the busiest rider's two years (some 13,000 reports and as many lines,
one heap page each) are a few index pages, not 25,000 table pages. PostgreSQL only:
SQLite has no INCLUDE, and its tables are clustered by rowid anyway.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    # name: (table, key columns, carried columns)
    "ix_reports_rider_id_received_at": (
        "reports",
        ["rider_id", "received_at"],
        ["category_id", "counted_as"],
    ),
    "ix_points_ledger_rider_id_created_at": (
        "points_ledger",
        ["rider_id", "created_at"],
        ["category_id", "points"],
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, columns, carried) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, postgresql_include=carried)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, columns, _carried) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
