"""The migrations go up and down cleanly on an empty database of the suite's kind."""

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from app.db import Database, migrate


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
