"""The storage layer: SQLite durability settings, SpatiaLite loading, concurrent writers."""

import threading

import pytest
from sqlalchemy import text

from app.db import Database
from app.errors import ConfigurationError
from app.models import Platform


@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    yield db
    db.dispose()


def test_sqlite_is_durable_and_concurrent(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("SELECT spatialite_version()")).scalar()


def test_missing_spatialite_names_the_package(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPATIALITE_LIBRARY_PATH", str(tmp_path / "nowhere" / "mod_spatialite"))
    db = Database(f"sqlite:///{tmp_path / 'y.db'}")
    with pytest.raises(ConfigurationError, match="libsqlite3-mod-spatialite"):
        db.engine.connect()
    db.dispose()


def test_concurrent_read_then_write_transactions_never_see_locked(
    database: Database, baseline
) -> None:
    """Every writer reads, then writes: the pattern that upgrades a SQLite lock and fails
    with "database is locked" unless write transactions begin IMMEDIATE."""
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(5):
                with database.transaction() as s:
                    s.execute(text("SELECT count(*) FROM platforms")).scalar()
                    s.add(
                        Platform(
                            code=f"p{n}x{i}",
                            name="t",
                            api_key_hash=f"{n}-{i}".ljust(64),
                            api_key_prefix="x",
                            active=True,
                        )
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with database.session(write=False) as s:
        assert (
            s.execute(text("SELECT count(*) FROM platforms WHERE code LIKE 'p%x%'")).scalar() == 40
        )
