"""The queue as CSV: every row of a filter, streamed, in a file Excel opens with its
Chinese text (UTF-8 with a byte order mark)."""

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import Select

from app.categories import STANDARD_FIELDS
from app.db import Database
from app.models import Ticket
from app.text import rfc3339_utc
from app.tickets.queue import stream
from app.tickets.views import QueueRow, queue_rows

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


def queue_csv(database: Database, query: Select[Ticket], *, now: datetime) -> Iterator[bytes]:
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


# -- Excel, for the district's monthly report

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Each figure's heading in the workbook: Chinese first, as the report is written.
FIGURE_LABELS = {
    "street": "街道代码 street",
    "street_name": "街道 street name",
    "total": "工单数 tickets",
    "open": "未结 open",
    "overdue": "超期 overdue",
    "closure_rate": "结案率 closure rate",
    "on_time_response_rate": "按时响应率 on-time response",
    "on_time_resolution_rate": "按期办结率（含逾期未结） on-time resolution",
    "reopen_rate": "返工率 reopen rate",
    "resolved_within_sla": "时限内办结 resolved within SLA",
    "shelved_count": "挂账 shelved",
    "extended_count": "延期 extended",
    "escalated_count": "督办 escalated",
    "on_time_without_extension_rate": "不计延期按期办结率 on time without extension",
    "median_hours_to_accept": "受理用时中位数（小时） median hours to accept",
    "median_hours_to_resolve": "办结用时中位数（小时） median hours to resolve",
    "median_working_hours_to_respond": "响应工作时中位数 median working hours to respond",
    "median_working_hours_to_resolve": "办结工作时中位数 median working hours to resolve",
    "unit": "单位代码 unit",
    "unit_name": "处置单位 unit name",
    "kind": "类型 kind",
    "dispatched": "派遣数 dispatched",
    "done": "处置完毕 done",
    "on_time_rate": "按期处置率 on-time rate",
    "median_working_hours_to_done": "处置工作时中位数 median working hours to done",
    "rework_rate": "返工率 rework rate",
    "return_rate": "回退率 return rate",
    "median_minutes_to_acknowledge": "签收用时中位数（分钟） median minutes to acknowledge",
    "acknowledged_within_1h_rate": "1小时内签收率 acknowledged within 1 hour",
}
_RATES = {
    "closure_rate",
    "on_time_response_rate",
    "on_time_resolution_rate",
    "reopen_rate",
    "on_time_without_extension_rate",
    "on_time_rate",
    "rework_rate",
    "return_rate",
    "acknowledged_within_1h_rate",
}


def _workbook() -> Any:
    from openpyxl import Workbook

    return Workbook()


def _saved(workbook: Any) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _window_line(created_from: datetime | None, created_to: datetime | None) -> str:
    start = rfc3339_utc(created_from) if created_from else "…"
    end = rfc3339_utc(created_to) if created_to else "…"
    return f"[{start}, {end})"


def stats_xlsx(
    figures: dict[str, Any], *, created_from: datetime | None, created_to: datetime | None
) -> bytes:
    """The office's figures as a workbook: the KPIs, then counts by status, category and
    community, a sheet each."""
    workbook = _workbook()
    sheet = workbook.active
    sheet.title = "概况 summary"
    sheet.append(["时段 window", _window_line(created_from, created_to)])
    for name, label in FIGURE_LABELS.items():
        if name in figures and not name.startswith("street"):
            sheet.append([label, figures[name]])
            if name in _RATES and figures[name] is not None:
                sheet.cell(sheet.max_row, 2).number_format = "0.0%"
    for key, title in (
        ("by_status", "按状态 by status"),
        ("by_category", "按类别 by category"),
        ("by_community", "按社区 by community"),
    ):
        part = workbook.create_sheet(title)
        part.append(["", "工单数 tickets"])
        for code, n in sorted(figures[key].items()):
            part.append([_safe(code), n])
    return _saved(workbook)


def streets_xlsx(
    rows: list[dict[str, Any]],
    *,
    created_from: datetime | None,
    created_to: datetime | None,
    title: str = "各街道 streets",
) -> bytes:
    """A table of streets (or of units) as a workbook, in the order it was ranked."""
    workbook = _workbook()
    sheet = workbook.active
    sheet.title = title
    columns = [name for name in FIGURE_LABELS if rows and name in rows[0]]
    sheet.append([FIGURE_LABELS[name] for name in columns])
    for row in rows:
        sheet.append([_safe(row[name]) for name in columns])
        for index, name in enumerate(columns, start=1):
            if name in _RATES and row[name] is not None:
                sheet.cell(sheet.max_row, index).number_format = "0.0%"
    sheet.append([])
    sheet.append(["时段 window", _window_line(created_from, created_to)])
    return _saved(workbook)
