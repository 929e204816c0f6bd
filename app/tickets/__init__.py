"""Tickets from the office's side: the status graph and the one function that changes a
status, the queue, SLAs on the working calendar, office statistics and exports, and
the reference data (areas, categories, calendar) each process holds.

Uses ``app.areas``, ``app.categories``, ``app.media``, ``app.riders``, ``app.staff``
and the bottom floor."""

from app.tickets.calendar import YearInput, calendar_warnings, get_year, seed_calendar, set_year
from app.tickets.export import XLSX, queue_csv, stats_xlsx, streets_xlsx
from app.tickets.queue import QueueFilter, QueueSort, page_query, queue_page, status_counts
from app.tickets.reference import (
    REFERENCE_TOKENS,
    CategoryRules,
    Reference,
    current_reference,
    held_reference,
    route_point,
    warm_reference,
)
from app.tickets.sla import close_resolved, record_breaches
from app.tickets.stats import STREET_FIGURES, daily_trend, office_stats, street_table
from app.tickets.views import (
    QueueRow,
    ReportOnTicket,
    TicketView,
    queue_rows,
    ticket_in_scope,
    ticket_view,
)
from app.tickets.workflow import (
    HIDE_REASONS,
    NEEDS_A_NOTE,
    PUBLIC_ACTIONS,
    REJECT_REASONS,
    ActionInput,
    VerificationInput,
    allowed_actions,
    apply_action,
    change,
    verify_resolution,
)
from app.tickets.working_time import SlaClock, WorkingCalendar, due

__all__ = [
    "HIDE_REASONS",
    "NEEDS_A_NOTE",
    "PUBLIC_ACTIONS",
    "REFERENCE_TOKENS",
    "REJECT_REASONS",
    "STREET_FIGURES",
    "XLSX",
    "ActionInput",
    "CategoryRules",
    "QueueFilter",
    "QueueRow",
    "QueueSort",
    "Reference",
    "ReportOnTicket",
    "SlaClock",
    "TicketView",
    "VerificationInput",
    "WorkingCalendar",
    "YearInput",
    "allowed_actions",
    "apply_action",
    "calendar_warnings",
    "change",
    "close_resolved",
    "current_reference",
    "daily_trend",
    "due",
    "get_year",
    "held_reference",
    "office_stats",
    "page_query",
    "queue_csv",
    "queue_page",
    "queue_rows",
    "record_breaches",
    "route_point",
    "seed_calendar",
    "set_year",
    "stats_xlsx",
    "status_counts",
    "street_table",
    "streets_xlsx",
    "ticket_in_scope",
    "ticket_view",
    "verify_resolution",
    "warm_reference",
]
