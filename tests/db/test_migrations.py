"""The migrations go up and down cleanly on an empty database of the suite's kind."""

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from geoalchemy2 import Geometry, WKTElement
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.orm import Session

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


AREAS = sa.table(
    "areas",
    sa.column("id", sa.Integer()),
    sa.column("code", sa.String()),
    sa.column("name", sa.String()),
    sa.column("level", sa.String()),
    sa.column("boundary", Geometry("MULTIPOLYGON", srid=4326)),
    sa.column("created_at", UtcDateTime()),
    sa.column("updated_at", UtcDateTime()),
)
TICKETS = sa.table(
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


def _district(s: Session, *, at: datetime) -> None:
    """The district every ticket of these tests is in."""
    s.execute(
        AREAS.insert().values(
            id=1,
            code="310105",
            name="长宁区",
            level="district",
            boundary=WKTElement(
                "MULTIPOLYGON(((121.3 31.1,121.5 31.1,121.5 31.3,121.3 31.1)))", srid=4326
            ),
            created_at=at,
            updated_at=at,
        )
    )


def _ticket(s: Session, ticket_id: uuid.UUID, *, ref: str, at: datetime, **extra: object) -> None:
    """An accepted ticket of the category ``waste``, opened ``at``."""
    category = s.execute(text("SELECT id FROM categories WHERE code = 'waste'")).scalar()
    s.execute(
        TICKETS.insert().values(
            id=ticket_id,
            ref=ref,
            category_id=category,
            status="accepted",
            priority=3,
            district_id=1,
            location=WKTElement("POINT(121.43 31.22)", srid=4326),
            report_count=1,
            version=1,
            respond_by=at,
            resolve_by=at,
            created_at=at,
            updated_at=at,
            **extra,
        )
    )


def test_a_ticket_extended_before_0017_keeps_the_deadline_it_had(scratch_url: str) -> None:
    """Migration 0017 gives a ticket whose extension was approved the deadline before it
    (the hours taken off), and none to a ticket never extended."""
    migrate.upgrade(scratch_url, "0016")
    db = Database(scratch_url)
    moved = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    extended, plain = uuid.uuid4(), uuid.uuid4()
    try:
        with db.transaction() as s:
            _district(s, at=moved)
            for ticket_id, ref, status in ((extended, "EXT1", "approved"), (plain, "PLN1", None)):
                _ticket(
                    s,
                    ticket_id,
                    ref=ref,
                    at=moved,
                    extension_hours=24 if status else None,
                    extension_status=status,
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


def test_migration_0020_finds_when_the_office_first_signed_for_a_ticket(
    scratch_url: str,
) -> None:
    """Migration 0020 gives each ticket the earliest ``acknowledge`` or ``accept`` of an
    officer or the district among its events — not a crew's, not the system's — and none
    to a ticket without one."""
    migrate.upgrade(scratch_url, "0019")
    db = Database(scratch_url)
    staff = sa.table(
        "staff",
        sa.column("id", sa.Uuid()),
        *(sa.column(name) for name in ("username", "password_hash", "role", "active")),
        sa.column("created_at", UtcDateTime()),
        sa.column("updated_at", UtcDateTime()),
    )
    events = sa.table(
        "ticket_events",
        sa.column("id", sa.Uuid()),
        sa.column("ticket_id", sa.Uuid()),
        sa.column("type", sa.String()),
        sa.column("actor_kind", sa.String()),
        sa.column("actor_id", sa.Uuid()),
        sa.column("created_at", UtcDateTime()),
    )
    opened = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    people = {role: uuid.uuid4() for role in ("officer", "district", "crew")}
    signed, accepted, unsigned = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # (ticket, type, actor's role or None for the system, minutes after opening)
    history = [
        (signed, "created", None, 0),
        (signed, "accept", None, 5),  # the system's (a department's server): not it
        (signed, "comment", "officer", 10),  # not a signing
        (signed, "acknowledge", "officer", 20),  # the office's first
        (signed, "acknowledge", "officer", 200),
        (accepted, "dispatch", "district", 1),
        (accepted, "acknowledge", "crew", 30),  # the unit's: not the office's
        (accepted, "accept", "district", 90),
        (unsigned, "acknowledge", "crew", 15),
    ]
    try:
        with db.transaction() as s:
            _district(s, at=opened)
            for role, person in people.items():
                s.execute(
                    staff.insert().values(
                        id=person,
                        username=f"{role}_0020",
                        password_hash="x",
                        role=role,
                        active=True,
                        created_at=opened,
                        updated_at=opened,
                    )
                )
            for ticket_id, ref in ((signed, "ACK1"), (accepted, "ACK2"), (unsigned, "ACK3")):
                _ticket(s, ticket_id, ref=ref, at=opened)
            for ticket_id, kind, role, minutes in history:
                s.execute(
                    events.insert().values(
                        id=uuid.uuid4(),
                        ticket_id=ticket_id,
                        type=kind,
                        actor_kind="system" if role is None else "staff",
                        actor_id=None if role is None else people[role],
                        created_at=opened + timedelta(minutes=minutes),
                    )
                )
        migrate.upgrade(scratch_url)
        with db.session() as s:
            found = dict(
                s.execute(
                    sa.select(
                        sa.column("id", sa.Uuid()),
                        sa.column("office_acknowledged_at", UtcDateTime()),
                    ).select_from(sa.table("tickets"))
                ).all()
            )
        assert found == {
            signed: opened + timedelta(minutes=20),
            accepted: opened + timedelta(minutes=90),
            unsigned: None,
        }
        migrate.downgrade(scratch_url, "0019")  # and back: the column goes again
        assert "office_acknowledged_at" not in {
            c["name"] for c in inspect(db.engine).get_columns("tickets")
        }
    finally:
        db.dispose()
