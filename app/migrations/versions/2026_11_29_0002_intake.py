"""Rider intake and triage: media, tickets and their events, reports, idempotency records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from app.models.base import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("upload_sha256", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
        sa.ForeignKeyConstraint(["rider_id"], ["riders.id"], name="fk_media_rider_id_riders"),
        sa.UniqueConstraint("rider_id", "upload_sha256", name="uq_media_rider_id_upload_sha256"),
    )
    op.create_index("ix_media_sha256", "media", ["sha256"])

    op.create_table(
        "tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.String(16), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("location", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.Integer()),
        sa.Column("community_id", sa.Integer()),
        sa.Column("report_count", sa.Integer(), nullable=False),
        sa.Column("respond_by", UtcDateTime(), nullable=False),
        sa.Column("resolve_by", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("assignee", sa.String(200)),
        sa.Column("reject_reason", sa.String(32)),
        sa.Column("duplicate_of_id", sa.Uuid()),
        sa.Column("accepted_at", UtcDateTime()),
        sa.Column("resolved_at", UtcDateTime()),
        sa.Column("closed_at", UtcDateTime()),
        sa.Column("respond_breached_at", UtcDateTime()),
        sa.Column("resolve_breached_at", UtcDateTime()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"], ["tickets.id"], name="fk_tickets_duplicate_of_id_tickets"
        ),
        sa.UniqueConstraint("ref", name="uq_tickets_ref"),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name="fk_tickets_category_id_categories"
        ),
        sa.ForeignKeyConstraint(["district_id"], ["areas.id"], name="fk_tickets_district_id_areas"),
        sa.ForeignKeyConstraint(["street_id"], ["areas.id"], name="fk_tickets_street_id_areas"),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name="fk_tickets_community_id_areas"
        ),
    )
    op.create_index(
        "ix_tickets_category_id_status_created_at",
        "tickets",
        ["category_id", "status", "created_at"],
    )
    op.create_index(
        "ix_tickets_street_id_created_at_id", "tickets", ["street_id", "created_at", "id"]
    )
    op.create_index(
        "ix_tickets_district_id_created_at_id", "tickets", ["district_id", "created_at", "id"]
    )

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Uuid()),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("note", sa.Text()),
        sa.Column("data", sa.JSON()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_events"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_ticket_events_ticket_id_tickets"
        ),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])

    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("location", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("input_lat", sa.Float(), nullable=False),
        sa.Column("input_lon", sa.Float(), nullable=False),
        sa.Column("input_coord_sys", sa.String(8), nullable=False),
        sa.Column("accuracy_m", sa.Float()),
        sa.Column("description", sa.Text()),
        sa.Column("address_hint", sa.String(200)),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.Integer()),
        sa.Column("community_id", sa.Integer()),
        sa.Column("observed_at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.ForeignKeyConstraint(["rider_id"], ["riders.id"], name="fk_reports_rider_id_riders"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_reports_ticket_id_tickets"),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name="fk_reports_category_id_categories"
        ),
        sa.ForeignKeyConstraint(["district_id"], ["areas.id"], name="fk_reports_district_id_areas"),
        sa.ForeignKeyConstraint(["street_id"], ["areas.id"], name="fk_reports_street_id_areas"),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name="fk_reports_community_id_areas"
        ),
    )
    op.create_index("ix_reports_rider_id_received_at", "reports", ["rider_id", "received_at"])
    op.create_index("ix_reports_ticket_id", "reports", ["ticket_id"])

    op.create_table(
        "report_media",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("media_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", "media_id", name="pk_report_media"),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name="fk_report_media_report_id_reports"
        ),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name="fk_report_media_media_id_media"),
    )
    op.create_index("ix_report_media_media_id", "report_media", ["media_id"])

    op.create_table(
        "verifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("fixed", sa.Boolean(), nullable=False),
        sa.Column("location", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("media_ids", sa.JSON()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_verifications"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_verifications_ticket_id_tickets"
        ),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["riders.id"], name="fk_verifications_rider_id_riders"
        ),
        sa.UniqueConstraint("ticket_id", "rider_id", name="uq_verifications_ticket_id_rider_id"),
    )
    op.create_index("ix_verifications_rider_id", "verifications", ["rider_id"])

    op.create_table(
        "idempotency_records",
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rider_id", "key", name="pk_idempotency_records"),
        sa.ForeignKeyConstraint(
            ["rider_id"], ["riders.id"], name="fk_idempotency_records_rider_id_riders"
        ),
    )
    op.create_index("ix_idempotency_records_created_at", "idempotency_records", ["created_at"])


def _drop_geometry_sqlite(table: str, column: str, *, indexed: bool) -> None:
    # SpatiaLite keeps a geometry's registration and its R*Tree outside the table.
    if indexed:
        op.execute(f"SELECT DisableSpatialIndex('{table}', '{column}')")
        op.execute(f"DROP TABLE IF EXISTS idx_{table}_{column}")
    op.execute(f"SELECT DiscardGeometryColumn('{table}', '{column}')")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_table("idempotency_records")
    if sqlite:
        _drop_geometry_sqlite("verifications", "location", indexed=False)
    op.drop_table("verifications")
    op.drop_table("report_media")
    if sqlite:
        _drop_geometry_sqlite("reports", "location", indexed=False)
    op.drop_table("reports")
    op.drop_table("ticket_events")
    if sqlite:
        _drop_geometry_sqlite("tickets", "location", indexed=True)
    op.drop_table("tickets")
    op.drop_table("media")
