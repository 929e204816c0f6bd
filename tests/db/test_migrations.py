"""The migrations go up and down cleanly on an empty database of the suite's kind."""

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from geoalchemy2 import Geometry, WKTElement
from sqlalchemy import create_engine, inspect, make_url, text

from app.db import Database, UtcDateTime, migrate


@pytest.fixture
def scratch_url(tmp_path) -> Iterator[str]:
    base = os.environ.get("SENTINEL_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"sentinel_scratch_{uuid.uuid4().hex[:8]}"
    server = create_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with server.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    server.dispose()


TABLES = {"areas", "categories", "platforms", "riders", "staff"}


def test_upgrade_downgrade_upgrade(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    db = Database(scratch_url)
    try:
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        assert migrate.current_revision(db.engine) == migrate.head_revision()
        migrate.downgrade(scratch_url, "base")
        assert not TABLES & set(inspect(db.engine).get_table_names())
        migrate.upgrade(scratch_url)
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        with db.session() as s:
            # The spatial index exists again after the round trip.
            if db.is_sqlite:
                assert (
                    s.execute(
                        text(
                            "SELECT spatial_index_enabled FROM geometry_columns "
                            "WHERE f_table_name = 'areas'"
                        )
                    ).scalar()
                    == 1
                )
            else:
                assert (
                    s.execute(
                        text(
                            "SELECT 1 FROM pg_indexes WHERE tablename = 'areas' "
                            "AND indexdef LIKE '%gist%'"
                        )
                    ).scalar()
                    == 1
                )
    finally:
        db.dispose()


def test_a_category_fixed_before_it_is_answered_stops_the_upgrade(scratch_url: str) -> None:
    """Migration 0007 names the categories that break the rule and changes nothing; once
    they are corrected, the upgrade goes through."""
    migrate.upgrade(scratch_url, "0006")
    db = Database(scratch_url)
    try:
        with db.transaction() as s:
            s.execute(
                text(
                    "UPDATE categories SET resolve_within_h = 1, respond_within_h = 4 "
                    "WHERE code = 'waste'"
                )
            )
        with pytest.raises(RuntimeError, match="waste"):
            migrate.upgrade(scratch_url)
        assert migrate.current_revision(db.engine) == "0006"
        with db.transaction() as s:
            s.execute(text("UPDATE categories SET resolve_within_h = 48 WHERE code = 'waste'"))
        migrate.upgrade(scratch_url)
        assert migrate.current_revision(db.engine) == migrate.head_revision()
    finally:
        db.dispose()


def test_a_ticket_extended_before_0017_keeps_the_deadline_it_had(scratch_url: str) -> None:
    """Migration 0017 gives a ticket whose extension was approved the deadline before it
    (the hours taken off), and none to a ticket never extended."""
    migrate.upgrade(scratch_url, "0016")
    db = Database(scratch_url)
    areas = sa.table(
        "areas",
        sa.column("id", sa.Integer()),
        sa.column("code", sa.String()),
        sa.column("name", sa.String()),
        sa.column("level", sa.String()),
        sa.column("boundary", Geometry("MULTIPOLYGON", srid=4326)),
        sa.column("created_at", UtcDateTime()),
        sa.column("updated_at", UtcDateTime()),
    )
    tickets = sa.table(
        "tickets",
        sa.column("id", sa.Uuid()),
        *(sa.column(name) for name in ("ref", "category_id", "status", "priority", "district_id")),
        sa.column("location", Geometry("POINT", srid=4326)),
        sa.column("report_count", sa.Integer()),
        sa.column("version", sa.Integer()),
        *(
            sa.column(name, UtcDateTime())
            for name in ("respond_by", "resolve_by", "created_at", "updated_at")
        ),
        sa.column("extension_hours", sa.Float()),
        sa.column("extension_status", sa.String()),
    )
    moved = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    extended, plain = uuid.uuid4(), uuid.uuid4()
    try:
        with db.transaction() as s:
            s.execute(
                areas.insert().values(
                    id=1,
                    code="310105",
                    name="长宁区",
                    level="district",
                    boundary=WKTElement(
                        "MULTIPOLYGON(((121.3 31.1,121.5 31.1,121.5 31.3,121.3 31.1)))", srid=4326
                    ),
                    created_at=moved,
                    updated_at=moved,
                )
            )
            category = s.execute(text("SELECT id FROM categories WHERE code = 'waste'")).scalar()
            for ticket_id, ref, status in ((extended, "EXT1", "approved"), (plain, "PLN1", None)):
                s.execute(
                    tickets.insert().values(
                        id=ticket_id,
                        ref=ref,
                        category_id=category,
                        status="accepted",
                        priority=3,
                        district_id=1,
                        location=WKTElement("POINT(121.43 31.22)", srid=4326),
                        report_count=1,
                        version=1,
                        respond_by=moved,
                        resolve_by=moved,
                        created_at=moved,
                        updated_at=moved,
                        extension_hours=24 if status else None,
                        extension_status=status,
                    )
                )
        migrate.upgrade(scratch_url)
        with db.session() as s:
            found = dict(
                s.execute(
                    sa.select(
                        sa.column("id", sa.Uuid()), sa.column("original_resolve_by", UtcDateTime())
                    ).select_from(sa.table("tickets"))
                ).all()
            )
        assert found == {extended: moved - timedelta(hours=24), plain: None}
        migrate.downgrade(scratch_url, "0016")  # and back: the column goes again
        assert "original_resolve_by" not in {
            c["name"] for c in inspect(db.engine).get_columns("tickets")
        }
    finally:
        db.dispose()
