"""Whether this process can serve: its database answers and its schema is the code's."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import Database, migrate
from app.models import utcnow
from app.notify import dead_channels
from app.tickets import calendar_warnings


@dataclass(frozen=True)
class Readiness:
    ready: bool
    code: str | None  # why not, as a problem's code
    detail: str | None
    schema: str | None
    database: str
    # What the operator should see to, though the service can serve (a missing calendar).
    warnings: tuple[str, ...] = ()


def readiness(database: Database, *, now: datetime | None = None) -> Readiness:
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
    with database.session() as session:
        now = now or utcnow()
        warnings = tuple(calendar_warnings(session, now)) + tuple(
            f"channel {c.code} ({c.kind}) has failed since {c.failing_since:%Y-%m-%d %H:%M} UTC: "
            f"{c.last_error}"
            for c in dead_channels(session, now=now)
        )
    return Readiness(True, None, None, current, database.kind, warnings)
