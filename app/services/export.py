"""The queue as CSV: every row of a filter, streamed, in a file Excel opens with its
Chinese text (UTF-8 with a byte order mark)."""

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from geoalchemy2.shape import to_shape
from sqlalchemy import Select

from app.db import Database
from app.models import Ticket
from app.services.categories import STANDARD_FIELDS
from app.services.queue import stream
from app.services.text import rfc3339_utc
from app.services.tickets import QueueRow, queue_rows

CSV_COLUMNS = [
    "ref",
    "status",
    "category",
    "category_name",
    "priority",
    "street",
    "street_name",
    "community",
    "community_name",
    "report_count",
    "assignee",
    "lat",
    "lon",
    "created_at",
    "respond_by",
    "resolve_by",
    "overdue",
    "id",
    # The category's national classification (GB/T 30428.2), when it has one.
    *(f"standard_{field}" for field in STANDARD_FIELDS),
]
_BATCH = 500


# A cell a spreadsheet would read as a formula (CSV injection): written as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _cells(row: QueueRow, now: datetime) -> list[object]:
    return [_safe(cell) for cell in _raw_cells(row, now)]


def _raw_cells(row: QueueRow, now: datetime) -> list[object]:
    t, point = row.ticket, to_shape(row.ticket.location)
    return [
        t.ref,
        t.status,
        row.category,
        row.category_name,
        t.priority,
        row.street,
        row.street_name,
        row.community,
        row.community_name,
        t.report_count,
        t.assignee,
        point.y,
        point.x,
        rfc3339_utc(t.created_at),
        rfc3339_utc(t.respond_by),
        rfc3339_utc(t.resolve_by),
        t.is_overdue(now),
        t.id,
        *((row.standard or {}).get(field, "") for field in STANDARD_FIELDS),
    ]


def queue_csv(database: Database, query: Select[Ticket], now: datetime) -> Iterator[bytes]:
    """The rows of ``query`` as CSV, a batch at a time. It reads in a session of its own:
    a response streams after the request's session has ended."""
    with database.session() as session:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        writer.writerow(CSV_COLUMNS)
        batch: list[Ticket] = []
        for ticket in stream(session, query):
            batch.append(ticket)
            if len(batch) < _BATCH:
                continue
            writer.writerows(_cells(row, now) for row in queue_rows(session, batch))
            batch.clear()
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        writer.writerows(_cells(row, now) for row in queue_rows(session, batch))
        yield buffer.getvalue().encode()
