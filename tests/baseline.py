"""The state every test starts from (the Changning demo), and its cheap restoration.

The test database counts the writes to each table, whoever makes them (this process,
a server in another thread, a ``sentinel`` process): on PostgreSQL a statement trigger
calls a sequence of the table's (``nextval`` takes no lock a transaction waits for, and
counts even what is rolled back); on SQLite, which has one writer at a time, a row
trigger notes the table's name. After a test only the tables written since the last
restore are emptied and filled again with their baseline rows, together with the
tables that refer to them: most tests write four or five of the thirty-odd tables, and
few write the areas (whose polygons, spatial index and routing map are the costly part).
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, insert, select, text
from sqlalchemy.engine import Connection

from app.db import Database
from app.models import Base
from app.ops.demo import DemoCredentials

COUNTER_PREFIX = "test_writes_"
# Written by the schema's triggers when other tables change (app/tickets/reference.py).
WRITTEN_BY_TRIGGERS = frozenset({"reference_versions"})


@dataclass
class Baseline:
    credentials: DemoCredentials
    rows: dict[str, list[dict[str, Any]]]

    def password(self, username: str) -> str:
        return next(str(s["password"]) for s in self.credentials.staff if s["username"] == username)

    def api_key(self, platform: str) -> str:
        return next(p["api_key"] for p in self.credentials.platforms if p["code"] == platform)


def snapshot(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in key order (parents before the children that name them:
    areas refer to areas)."""
    with database.session(write=False) as session:
        return {
            t.name: [
                dict(r._mapping)
                for r in session.execute(select(t).order_by(*t.primary_key.columns))
            ]
            for t in Base.metadata.sorted_tables
        }


def _referrers(tables: list[Table]) -> dict[str, set[str]]:
    """For each table, the tables with a foreign key to it."""
    referrers: dict[str, set[str]] = {t.name: set() for t in tables}
    for table in tables:
        for key in table.foreign_keys:
            if key.column.table.name != table.name:
                referrers[key.column.table.name].add(table.name)
    return referrers


@dataclass
class Writes:
    """The writes to each table of ``database`` since the last :meth:`forget`."""

    database: Database
    _seen: dict[str, int] = field(default_factory=dict)

    def install(self) -> None:
        """The counters and their triggers, on the test database only (after the
        migrations: the schema the app sees is the migrations' own)."""
        with self.database.engine.begin() as connection:
            self._install(connection)
            self.forget(connection)

    def _install(self, connection: Connection) -> None:
        if self.database.is_sqlite:
            connection.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS test_writes (name TEXT PRIMARY KEY) WITHOUT ROWID"
            )
            for table in Base.metadata.sorted_tables:
                for event in ("INSERT", "UPDATE", "DELETE"):
                    # Whatever conflict clause the outer statement names, a name comes once.
                    connection.exec_driver_sql(
                        f"CREATE TRIGGER IF NOT EXISTS {COUNTER_PREFIX}{table.name}_{event} "
                        f"AFTER {event} ON {table.name} BEGIN "
                        f"INSERT INTO test_writes (name) SELECT '{table.name}' WHERE NOT EXISTS "
                        f"(SELECT 1 FROM test_writes WHERE name = '{table.name}'); END"
                    )
            return
        connection.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION test_count_write() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM nextval(TG_ARGV[0]); RETURN NULL; END $$"
        )
        for table in Base.metadata.sorted_tables:
            counter = f"{COUNTER_PREFIX}{table.name}"
            connection.exec_driver_sql(f"CREATE SEQUENCE IF NOT EXISTS {counter}")
            connection.exec_driver_sql(
                f"CREATE OR REPLACE TRIGGER {counter} "
                f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table.name} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION test_count_write('{counter}')"
            )

    def _triggers(self, connection: Connection) -> int:
        sql = (
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE :prefix"
            if self.database.is_sqlite
            else "SELECT count(*) FROM pg_trigger WHERE tgname LIKE :prefix"
        )
        count = connection.execute(text(sql), {"prefix": COUNTER_PREFIX + "%"}).scalar_one()
        return int(count)

    def _counts(self, connection: Connection) -> dict[str, int]:
        if self.database.is_sqlite:
            names = connection.exec_driver_sql("SELECT name FROM test_writes")
            return {name: 1 for (name,) in names}
        rows = connection.execute(
            text(
                "SELECT sequencename, last_value FROM pg_sequences WHERE sequencename LIKE :prefix"
            ),
            {"prefix": COUNTER_PREFIX + "%"},
        )
        return {name[len(COUNTER_PREFIX) :]: value or 0 for name, value in rows}

    def hold(self, connection: Connection) -> None:
        """No other transaction writes until this one ends (SQLite: its write lock is
        already taken)."""
        if not self.database.is_sqlite:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            connection.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")

    def written(self, connection: Connection) -> set[str]:
        """The tables written since the last :meth:`forget`. A test that took the schema
        down and up again (migrations) took the counters' triggers with the tables: they
        are put back, and every table counts as written."""
        per_table = 3 if self.database.is_sqlite else 1
        if self._triggers(connection) < per_table * len(Base.metadata.sorted_tables):
            self._install(connection)
            return {t.name for t in Base.metadata.sorted_tables}
        counts = self._counts(connection)
        return {name for name, count in counts.items() if count != self._seen.get(name, 0)}

    def forget(self, connection: Connection) -> None:
        """From here on, count from nothing."""
        if self.database.is_sqlite:
            connection.exec_driver_sql("DELETE FROM test_writes")
            self._seen = {}
        else:
            self._seen = self._counts(connection)


def restore(database: Database, baseline: Baseline, writes: Writes) -> set[str]:
    """Every table written since the last restore, and every table that refers to one of
    those and has baseline rows, back to its baseline rows: the names restored."""
    tables = Base.metadata.sorted_tables
    referrers = _referrers(tables)
    with database.transaction() as session:
        connection = session.connection()
        writes.hold(connection)
        written = writes.written(connection)
        restored: set[str] = set()
        pending = list(written)
        while pending:
            name = pending.pop()
            if name not in restored:
                restored.add(name)
                pending.extend(r for r in referrers[name] if r in written or baseline.rows[r])
        for table in reversed(tables):
            if table.name in restored:
                session.execute(delete(table))
        # Last, the tables the app's own triggers write while the others are filled in
        # (a new token in reference_versions for each area, category or calendar row).
        for table in sorted(tables, key=lambda t: t.name in WRITTEN_BY_TRIGGERS):
            if table.name in restored and baseline.rows[table.name]:
                session.execute(insert(table), baseline.rows[table.name])
        if restored:
            session.flush()
            _sequences_past_the_rows(connection, [t for t in tables if t.name in restored])
            writes.forget(connection)
    return restored


def _sequences_past_the_rows(connection: Connection, tables: list[Table]) -> None:
    """On PostgreSQL, each restored table's serial key counts on from its highest row:
    the baseline's rows came back with their keys, and whatever reset the table (a
    command that rebuilt the schema) may have reset its sequence too."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or keys[0].type.python_type is not int:
            continue
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": keys[0].name},
        ).scalar()
        if sequence is not None:
            connection.execute(
                text(
                    f"SELECT setval(:sequence, COALESCE((SELECT max({keys[0].name}) "
                    f"FROM {table.name}), 0) + 1, false)"
                ),
                {"sequence": sequence},
            )
