"""Whether this process can serve: its database answers and its schema is the code's."""

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import migrate
from app.db import Database


@dataclass(frozen=True)
class Readiness:
    ready: bool
    code: str | None  # why not, as a problem's code
    detail: str | None
    schema: str | None
    database: str


def readiness(database: Database) -> Readiness:
    head = migrate.head_revision()
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(database.engine)
    except SQLAlchemyError:
        return Readiness(
            False, "database_unreachable", "the database does not answer", None, database.kind
        )
    if current != head:
        return Readiness(
            False,
            "schema_not_at_head",
            f"schema at {current}, code expects {head}: run `sentinel db upgrade`",
            current,
            database.kind,
        )
    return Readiness(True, None, None, current, database.kind)
